//! `glupy.Dict`: a mapping of str to bytes over a referenced dict_t (xdata,
//! xattrs). Edits go to the dict itself, as a C translator's would.

use super::refs::DictRef;
use crate::ffi;
use pyo3::exceptions::{PyKeyError, PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use std::ffi::{CStr, CString};

#[pyclass(frozen, mapping, module = "glupy", name = "Dict")]
pub struct Dict {
    pub(crate) dict: DictRef,
}

fn key_cstring(key: &str) -> PyResult<CString> {
    CString::new(key).map_err(|_| PyValueError::new_err("a dict key cannot contain NUL"))
}

/// The bytes of a data_t; the trailing NUL of string-typed values is not
/// part of the value.
///
/// # Safety
/// `data` must be a live data_t.
unsafe fn data_bytes(data: *const ffi::data_t) -> Vec<u8> {
    // SAFETY: live by contract; data/len describe its buffer.
    let d = unsafe { &*data };
    if d.data.is_null() || d.len == 0 {
        return Vec::new();
    }
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(d.data as *const u8, d.len as usize) };
    let textual = matches!(
        d.data_type,
        ffi::gf_dict_data_type_t_GF_DATA_TYPE_STR
            | ffi::gf_dict_data_type_t_GF_DATA_TYPE_INT
            | ffi::gf_dict_data_type_t_GF_DATA_TYPE_UINT
            | ffi::gf_dict_data_type_t_GF_DATA_TYPE_DOUBLE
            | ffi::gf_dict_data_type_t_GF_DATA_TYPE_STR_OLD
    );
    match bytes.split_last() {
        Some((0, head)) if textual => head.to_vec(),
        _ => bytes.to_vec(),
    }
}

unsafe extern "C" fn collect_key(
    _d: *mut ffi::dict_t,
    key: *mut libc::c_char,
    _v: *mut ffi::data_t,
    acc: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: dict_foreach passes the Vec we gave it and a NUL-terminated key.
    unsafe {
        (*(acc as *mut Vec<String>)).push(CStr::from_ptr(key).to_string_lossy().into_owned())
    };
    0
}

impl Dict {
    pub fn new(dict: DictRef) -> Self {
        Dict { dict }
    }

    pub fn get_bytes(&self, key: &str) -> PyResult<Option<Vec<u8>>> {
        let k = key_cstring(key)?;
        let d = self.dict.get()?;
        let mut data: *mut ffi::data_t = std::ptr::null_mut();
        // SAFETY: live dict; dict_get_with_ref gives us a data reference
        // that we drop after copying.
        unsafe {
            if ffi::dict_get_with_ref(d, k.as_ptr() as *mut _, &mut data) != 0 || data.is_null() {
                return Ok(None);
            }
            let v = data_bytes(data);
            ffi::data_unref(data);
            Ok(Some(v))
        }
    }

    pub fn key_list(&self) -> PyResult<Vec<String>> {
        let d = self.dict.get()?;
        let mut keys: Vec<String> = Vec::new();
        // SAFETY: live dict; the callback only appends to `keys`.
        unsafe {
            ffi::dict_foreach(
                d,
                Some(collect_key),
                &mut keys as *mut Vec<String> as *mut _,
            );
        }
        Ok(keys)
    }

    /// Stores a Python value: bytes as binary, str as a string, int as a
    /// 64-bit integer (readable by dict_get_int32 too).
    pub fn set_value(&self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = key_cstring(key)?;
        let d = self.dict.get()?;
        crate::after_call::refuse_change_of_answered(d)?;
        let kp = k.as_ptr() as *mut libc::c_char;
        // SAFETY: live dict and key; dict_set_bin takes ownership of a
        // GF_CALLOC'd buffer; the other setters copy.
        let rc = unsafe {
            if let Ok(b) = value.cast::<PyBytes>() {
                let bytes = b.as_bytes();
                let buf = ffi::glupy_calloc(bytes.len().max(1));
                if buf.is_null() {
                    return Err(PyMemoryError::new_err("GF_CALLOC failed"));
                }
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, bytes.len());
                ffi::glupy_dict_set_bin(d, kp, buf, bytes.len())
            } else if let Ok(s) = value.cast::<PyString>() {
                let s = CString::new(s.to_str()?)
                    .map_err(|_| PyValueError::new_err("a dict string value cannot contain NUL"))?;
                ffi::dict_set_dynstr_with_alloc(d, kp, s.as_ptr())
            } else if let Ok(i) = value.extract::<i64>() {
                ffi::dict_set_int64(d, kp, i)
            } else {
                return Err(PyTypeError::new_err("dict values are bytes, str or int"));
            }
        };
        if rc != 0 {
            return Err(PyMemoryError::new_err(format!(
                "dict_set of {key:?} failed"
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Dict {
    /// Address of the dict_t (referenced while this object lives).
    #[getter]
    fn address(&self) -> usize {
        self.dict.as_ptr() as usize
    }

    /// A new dict, optionally filled from a mapping.
    #[new]
    #[pyo3(signature = (mapping=None))]
    fn py_new(mapping: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let dict = Dict::new(
            DictRef::new()
                .ok_or_else(|| PyMemoryError::new_err("dict_new failed"))?
                .bound(crate::lifecycle::life_of_this().as_ref()),
        );
        if let Some(m) = mapping {
            for item in m.call_method0("items")?.try_iter()? {
                let (k, v): (String, Bound<'_, PyAny>) = item?.extract()?;
                dict.set_value(&k, &v)?;
            }
        }
        Ok(dict)
    }

    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyBytes>> {
        match self.get_bytes(key)? {
            Some(v) => Ok(PyBytes::new(py, &v)),
            None => Err(PyKeyError::new_err(key.to_string())),
        }
    }

    #[pyo3(signature = (key, default=None))]
    fn get(&self, py: Python<'_>, key: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        Ok(match self.get_bytes(key)? {
            Some(v) => PyBytes::new(py, &v).into_any().unbind(),
            None => default.unwrap_or_else(|| py.None()),
        })
    }

    /// The value parsed as an integer (GlusterFS stores ints as text).
    #[pyo3(signature = (key, default=None))]
    fn get_int(&self, key: &str, default: Option<i64>) -> PyResult<Option<i64>> {
        Ok(match self.get_bytes(key)? {
            Some(v) => Some(
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| PyValueError::new_err(format!("{key:?} is not an integer")))?,
            ),
            None => default,
        })
    }

    fn __setitem__(&self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_value(key, value)
    }

    fn __delitem__(&self, key: &str) -> PyResult<()> {
        let k = key_cstring(key)?;
        let d = self.dict.get()?;
        crate::after_call::refuse_change_of_answered(d)?;
        // SAFETY: live dict and key.
        if unsafe { ffi::glupy_dict_del(d, k.as_ptr() as *mut _) } {
            Ok(())
        } else {
            Err(PyKeyError::new_err(key.to_string()))
        }
    }

    fn __contains__(&self, key: &str) -> PyResult<bool> {
        Ok(self.get_bytes(key)?.is_some())
    }

    fn __len__(&self) -> PyResult<usize> {
        let d = self.dict.get()?;
        // SAFETY: live dict; count is read under no lock, as dict_foreach
        // callers in GlusterFS do. (int32_t in GlusterFS 10, unsigned in 11.)
        Ok(usize::try_from(unsafe { (*d).count }).unwrap_or(0))
    }

    fn keys(&self) -> PyResult<Vec<String>> {
        self.key_list()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyList::new(py, self.key_list()?)?
            .into_any()
            .try_iter()?
            .into_any())
    }

    fn items<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyBytes>)>> {
        Ok(self
            .key_list()?
            .into_iter()
            .filter_map(|k| {
                self.get_bytes(&k)
                    .ok()
                    .flatten()
                    .map(|v| (k, PyBytes::new(py, &v)))
            })
            .collect())
    }

    /// A plain Python dict copy.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (k, v) in self.items(py)? {
            out.set_item(k, v)?;
        }
        Ok(out)
    }

    /// A new dict with the same entries (edits to it leave this one alone).
    fn copy(&self) -> PyResult<Self> {
        // SAFETY: live dict; dict_copy_with_ref returns a new dict with one
        // reference that we adopt.
        let d = unsafe { ffi::dict_copy_with_ref(self.dict.get()?, std::ptr::null_mut()) };
        if d.is_null() {
            return Err(PyMemoryError::new_err("dict copy failed"));
        }
        // SAFETY: fresh reference from dict_copy_with_ref.
        Ok(Dict::new(
            unsafe { DictRef::adopt(d) }.bound(self.dict.life()),
        ))
    }

    fn __repr__(&self) -> String {
        match self.key_list() {
            Ok(keys) => format!("<glupy.Dict keys={keys:?}>"),
            Err(_) => "<glupy.Dict of a translator that was shut down>".into(),
        }
    }
}
