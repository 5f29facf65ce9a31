"""Applications built on lucidae's estimators: anomaly detection, compression, text topics.

Each lives in its own module and imports its heavier dependencies lazily.

Examples
--------
>>> from lucidae.applications import AnomalyDetector
>>> AnomalyDetector(contamination=0.05).contamination
0.05
"""

from lucidae.applications.anomaly import AnomalyDetector, AnomalyExplanation, load_detector
from lucidae.applications.text import TextTopics, load_topics

__all__ = ["AnomalyDetector", "AnomalyExplanation", "TextTopics", "load_detector", "load_topics"]
