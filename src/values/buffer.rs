//! `glupy.Vector` (the data of readv/writev/put) and `glupy.Iobref`.
//! A Vector keeps the iobref that owns its memory referenced, so its bytes
//! and any memoryview of it stay valid as long as Python holds them.

use super::refs::IobrefRef;
use crate::ffi;
use pyo3::exceptions::{PyBufferError, PyMemoryError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(frozen, module = "glupy", name = "Iobref")]
pub struct Iobref {
    pub(crate) iobref: IobrefRef,
}

#[pyclass(frozen, module = "glupy", name = "Vector")]
pub struct Vector {
    pub(crate) iov: Vec<libc::iovec>,
    pub(crate) iobref: Option<IobrefRef>,
}

// SAFETY: the iovecs point into buffers owned by `iobref`, which is
// referenced for as long as the Vector lives and is never written through.
unsafe impl Send for Vector {}
// SAFETY: as above; the buffers are only read.
unsafe impl Sync for Vector {}

impl Vector {
    /// The data of a fop or callback argument, kept valid after the call:
    /// the iobref that owns the buffers is referenced; without one (the
    /// caller owns the memory only for the call) the data is copied into
    /// a buffer of our own.
    ///
    /// # Safety
    /// `iov[..count]` must be valid for the call's duration, its buffers
    /// owned by `iobref` if that is not NULL; `this` is our live xlator.
    pub unsafe fn from_c(
        iov: *const libc::iovec,
        count: i32,
        iobref: *mut ffi::iobref,
        this: *mut ffi::xlator_t,
    ) -> PyResult<Self> {
        let iov = if iov.is_null() || count <= 0 {
            Vec::new()
        } else {
            // SAFETY: by contract.
            unsafe { std::slice::from_raw_parts(iov, count as usize) }.to_vec()
        };
        // SAFETY: NULL or a live iobref by contract.
        match unsafe { IobrefRef::take(iobref) } {
            Some(iobref) => Ok(Vector {
                iov,
                iobref: Some(iobref),
            }),
            None => {
                let lent = Vector { iov, iobref: None };
                // Read now, while the call lends the memory.
                Vector::from_bytes(this, &lent.to_vec())
            }
        }
    }

    /// Copies `data` into a fresh iobuf from the process's pool.
    pub fn from_bytes(this: *mut ffi::xlator_t, data: &[u8]) -> PyResult<Self> {
        let iobref = IobrefRef::new().ok_or_else(|| PyMemoryError::new_err("iobref_new failed"))?;
        if data.is_empty() {
            return Ok(Vector {
                iov: Vec::new(),
                iobref: Some(iobref),
            });
        }
        // SAFETY: `this` is our live xlator; iobuf_get2 returns a buffer of
        // at least data.len() bytes with one ref, which iobref_add shares and
        // we then drop, leaving the iobref as the owner.
        unsafe {
            let iobuf = ffi::iobuf_get2(ffi::glupy_iobuf_pool(this), data.len());
            if iobuf.is_null() {
                return Err(PyMemoryError::new_err("iobuf_get2 failed"));
            }
            let ptr = ffi::glupy_iobuf_ptr(iobuf);
            std::ptr::copy_nonoverlapping(data.as_ptr(), ptr as *mut u8, data.len());
            let rc = ffi::iobref_add(iobref.as_ptr(), iobuf);
            ffi::iobuf_unref(iobuf);
            if rc != 0 {
                return Err(PyMemoryError::new_err("iobref_add failed"));
            }
            Ok(Vector {
                iov: vec![libc::iovec {
                    iov_base: ptr,
                    iov_len: data.len(),
                }],
                iobref: Some(iobref),
            })
        }
    }

    /// Binds the buffer to the life of the graph it came from.
    pub fn bound(mut self, life: Option<&std::sync::Arc<super::refs::Life>>) -> Self {
        self.iobref = self.iobref.map(|r| r.bound(life));
        self
    }

    /// RuntimeError once the buffer's graph went away.
    fn check(&self) -> PyResult<()> {
        self.iobref.as_ref().map_or(Ok(()), |r| r.get().map(|_| ()))
    }

    pub fn total_len(&self) -> usize {
        self.iov.iter().map(|v| v.iov_len).sum()
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.total_len());
        for v in &self.iov {
            // SAFETY: each iovec lies in a buffer our iobref keeps alive.
            out.extend_from_slice(unsafe {
                std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len)
            });
        }
        out
    }
}

#[pymethods]
impl Vector {
    /// New data to wind or unwind in place of the original.
    #[new]
    fn py_new(data: &[u8]) -> PyResult<Self> {
        Ok(Vector::from_bytes(super::current_this(), data)?
            .bound(crate::lifecycle::life_of_this().as_ref()))
    }

    fn __len__(&self) -> usize {
        self.total_len()
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.check()?;
        Ok(PyBytes::new(py, &self.to_vec()))
    }

    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.__bytes__(py)
    }

    /// Number of iovecs.
    #[getter]
    fn count(&self) -> usize {
        self.iov.len()
    }

    /// Read-only buffer protocol, zero-copy, for single-segment data;
    /// the memoryview keeps this Vector (and so its buffer) alive.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: libc::c_int,
    ) -> PyResult<()> {
        let me = slf.get();
        me.check()?;
        let (ptr, len) = match me.iov.as_slice() {
            [] => (
                std::ptr::NonNull::<u8>::dangling().as_ptr() as *mut libc::c_void,
                0,
            ),
            [one] => (one.iov_base, one.iov_len),
            _ => {
                return Err(PyBufferError::new_err(
                    "data in several segments: use bytes(vector)",
                ))
            }
        };
        // SAFETY: view is the caller's Py_buffer; PyBuffer_FillInfo takes a
        // reference on slf, which keeps our iobref (the memory) alive.
        let rc = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(view, slf.as_ptr(), ptr, len as isize, 1, flags)
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!(
            "<glupy.Vector {} bytes in {} segments>",
            self.total_len(),
            self.iov.len()
        )
    }
}
