import pytest


@pytest.fixture(scope="session")
def detectable_files():
    import fixtures
    return fixtures.ensure_files()
