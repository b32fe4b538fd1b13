"""Run the tests against the package in this source tree (not an installed
copy), and the library in the repository's build/ unless WARDEN_LIBRARY
says otherwise."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
