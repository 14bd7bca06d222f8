"""The Mesh domain: plain dataclasses and the rules over them. Standard library only."""
