//! The probing `wipefs --no-act` does: every superblock and partition-table magic on a device,
//! each with its offset, including a lone backup GPT header whose primary and protective MBR
//! are gone.
//!
//! This is the one module that calls libblkid directly: libblkid-rs 0.4.2 has no binding for
//! `blkid_probe_set_partitions_flags`, and without `BLKID_PARTS_FORCE_GPT` libblkid ignores a
//! GPT that lacks a protective MBR. The binding keeps its probe pointer private, so the whole
//! scan runs on a probe owned here.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CString};
use std::os::fd::RawFd;

use libblkid_rs_sys as sys;

use crate::inventory::model::Signature;

/// Upper bound on signatures per device; guards against a probe that keeps re-finding a magic.
const MAX_SIGNATURES: usize = 64;

/// An owned libblkid probe, freed on drop.
struct Probe(sys::blkid_probe);

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: self.0 came from blkid_new_probe, is non-null and is freed exactly once here.
        unsafe { sys::blkid_free_probe(self.0) }
    }
}

impl Probe {
    fn check(rc: c_int, what: &str) -> Result<(), String> {
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("{what} returned {rc}"))
        }
    }

    /// A copy of the value `name` of the current probe result, without its trailing NUL.
    fn value(&self, name: &str) -> Option<Vec<u8>> {
        let cname = CString::new(name).ok()?;
        let mut data: *const c_char = std::ptr::null();
        let mut len: usize = 0;
        // SAFETY: the probe is valid; cname outlives the call; data/len are valid out-pointers.
        let rc =
            unsafe { sys::blkid_probe_lookup_value(self.0, cname.as_ptr(), &mut data, &mut len) };
        if rc != 0 || data.is_null() {
            return None;
        }
        // SAFETY: libblkid returned a buffer of `len` bytes owned by the probe, which stays alive
        // and unmodified until the next probe call; it is copied out right away.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        let mut v = bytes.to_vec();
        while v.last() == Some(&0) {
            v.pop();
        }
        Some(v)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.value(name)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .filter(|s| !s.is_empty())
    }
}

/// Scan `size` bytes at `offset` of the open device `fd` (0, 0: all of it) for every signature.
/// The caller keeps `fd` open for the duration; libblkid does not close it.
pub fn scan(fd: RawFd, offset: u64, size: u64) -> Result<Vec<Signature>, String> {
    // SAFETY: plain allocation; a null result is handled below.
    let raw = unsafe { sys::blkid_new_probe() };
    if raw.is_null() {
        return Err("cannot allocate a probe".into());
    }
    let pr = Probe(raw);
    let off = i64::try_from(offset).map_err(|_| "offset out of range".to_string())?;
    let len = i64::try_from(size).map_err(|_| "size out of range".to_string())?;
    // SAFETY (all calls in this block): pr.0 is a valid probe and fd an open descriptor the
    // caller keeps open; the flag arguments are plain integers.
    unsafe {
        Probe::check(
            sys::blkid_probe_set_device(pr.0, fd, off, len),
            "set_device",
        )?;
        Probe::check(
            sys::blkid_probe_enable_superblocks(pr.0, 1),
            "enable_superblocks",
        )?;
        Probe::check(
            sys::blkid_probe_set_superblocks_flags(
                pr.0,
                (sys::BLKID_SUBLKS_MAGIC
                    | sys::BLKID_SUBLKS_TYPE
                    | sys::BLKID_SUBLKS_USAGE
                    | sys::BLKID_SUBLKS_LABEL
                    | sys::BLKID_SUBLKS_UUID
                    | sys::BLKID_SUBLKS_BADCSUM) as c_int,
            ),
            "set_superblocks_flags",
        )?;
        Probe::check(
            sys::blkid_probe_enable_partitions(pr.0, 1),
            "enable_partitions",
        )?;
        Probe::check(
            sys::blkid_probe_set_partitions_flags(
                pr.0,
                (sys::BLKID_PARTS_MAGIC | sys::BLKID_PARTS_FORCE_GPT) as c_int,
            ),
            "set_partitions_flags",
        )?;
    }
    let mut found: Vec<Signature> = Vec::new();
    while found.len() < MAX_SIGNATURES {
        // SAFETY: valid probe.
        let rc = unsafe { sys::blkid_do_probe(pr.0) };
        if rc != 0 {
            // 1: done. <0: an I/O error mid-scan; what was found so far still stands.
            break;
        }
        let (kind, off_key, magic_key, usage) = if let Some(t) = pr.string("TYPE") {
            (t, "SBMAGIC_OFFSET", "SBMAGIC", pr.string("USAGE"))
        } else if let Some(t) = pr.string("PTTYPE") {
            (
                t,
                "PTMAGIC_OFFSET",
                "PTMAGIC",
                Some("partition_table".to_string()),
            )
        } else {
            break;
        };
        let Some(at) = pr.string(off_key).and_then(|s| s.parse::<u64>().ok()) else {
            break;
        };
        let magic_len = pr.value(magic_key).map_or(0, |m| m.len() as u64);
        let sig = Signature {
            kind,
            usage,
            uuid: pr.string("UUID").or_else(|| pr.string("PTUUID")),
            label: pr.string("LABEL"),
            offset: Some(at),
        };
        let repeat = found
            .iter()
            .any(|s| s.kind == sig.kind && s.offset == sig.offset);
        if !repeat {
            found.push(sig);
        }
        if magic_len == 0 || repeat {
            // Nothing to hide: stepping back would find the same magic forever.
            continue;
        }
        // SAFETY: valid probe; the range is relative to the probing area, as wipefs uses it.
        unsafe {
            Probe::check(
                sys::blkid_probe_hide_range(pr.0, at, magic_len),
                "hide_range",
            )?;
            Probe::check(sys::blkid_probe_step_back(pr.0), "step_back")?;
        }
    }
    Ok(found)
}
