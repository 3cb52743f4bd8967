import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import poolnd.engines

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

ENGINES = poolnd.engines.available()
FAST_ENGINES = tuple(e for e in ENGINES if e != "reference")


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, different for every test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture(params=FAST_ENGINES)
def fast_engine(request):
    return request.param
