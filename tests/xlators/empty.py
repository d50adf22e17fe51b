"""Defines no fop: every request passes straight through."""
import glupy


class xlator(glupy.Translator):
    pass
