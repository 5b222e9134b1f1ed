import pytest
import torch


@pytest.fixture(autouse=True)
def fresh_compile_caches():
    """Every test starts without compiled frames: the recompile limit is never reached across tests, so a
    compiled backend never falls back to eager code silently."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
