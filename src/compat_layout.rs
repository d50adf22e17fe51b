//! Checks gluster.glupy's ctypes layouts against the bindings.
