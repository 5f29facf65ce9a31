"""Applications built on lucidae's estimators: anomaly detection, compression, text topics.

Each lives in its own module and imports its heavier dependencies lazily.

Examples
--------
>>> from lucidae.applications import AnomalyDetector
>>> AnomalyDetector(contamination=0.05).contamination
0.05
"""

from lucidae.applications.anomaly import AnomalyDetector, AnomalyExplanation, load_detector

__all__ = ["AnomalyDetector", "AnomalyExplanation", "load_detector"]
