"""Fixtures for host tests (see hostlib for what boots ComfyUI and loads the pack)."""
import pytest

import fixtures
from hostlib import PACK, Graph, comfy_nodes


@pytest.fixture(scope="session")
def pack():
    """The pack's package as ComfyUI loaded it (pack.nodes, pack.fireflow)."""
    return PACK


@pytest.fixture(scope="session")
def node():
    """Instantiate a registered node by ID: node('FireFlowInverter')."""
    return lambda node_id: comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


@pytest.fixture(scope="session")
def tiny():
    return fixtures.tiny_flux(0)


@pytest.fixture(scope="session")
def detectable_files():
    return fixtures.ensure_files()


@pytest.fixture
def graph():
    return Graph()
