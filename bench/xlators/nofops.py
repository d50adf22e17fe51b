"""Defines no fop: every request goes through GlusterFS's defaults, never Python."""
import glupy


class xlator(glupy.Translator):
    pass
