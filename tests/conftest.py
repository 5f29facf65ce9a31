import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def digits():
    from lucidae.datasets import load_digits

    return load_digits()


@pytest.fixture(autouse=True)
def _torch_threads():
    # Tests train many tiny models: thread start-up costs more than it saves.
    torch.set_num_threads(1)
    yield
