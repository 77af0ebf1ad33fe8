"""Helpers other test modules import (e.g. `from tests.helpers.auth import auth_headers`)."""
