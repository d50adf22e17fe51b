//! glupy: a GlusterFS 10.3 translator (`features/glupy`) that runs
//! translators written in Python.
//!
//! GlusterFS dlopens the cdylib and reads one symbol, `xlator_api`
//! (see `api`). The fops a Python module defines are dispatched through the
//! C shim generated from `src/fops.table`; every other fop is GlusterFS's
//! own pass-through default.
#![deny(unsafe_op_in_unsafe_fn)]

mod ffi;
pub mod fop_spec;

mod after_call;
mod aio;
mod announce;
mod answer;
mod answer_table;
pub mod api;
mod awaited;
mod collector;
#[cfg(test)]
mod compat_layout;
mod convert;
mod dispatch;
mod events;
mod fault;
mod fops;
mod frame;
mod gluster_version;
mod guard;
mod instance;
mod interp;
mod lifecycle;
mod logging;
mod pending;
mod pool;
mod pymodule;
#[cfg(test)]
mod pystubs;
mod queued;
mod reply_fields;
mod statedump;
mod status;
mod step;
mod task_registry;
mod threads;
mod turn;
mod values;
