//! The thread's OpenSSL error queue: cleared before each call whose failure
//! we report, drained into the error that reports it, so nothing leaks into
//! the next call.

use openssl_sys as sys;

use crate::error::Reason;

/// Empty the calling thread's error queue. It is nearly always empty
/// already, and a look is far cheaper than OpenSSL 3's clear, which wipes
/// every slot of the queue.
pub(crate) fn clear_errors() {
    // SAFETY: no preconditions; both only touch this thread's queue.
    unsafe {
        if super::ERR_peek_error() != 0 {
            sys::ERR_clear_error();
        }
    }
}

/// Empty the calling thread's error queue into one line, oldest first:
/// `error:0A000086:SSL routines::certificate verify failed`. Empty if the
/// queue was.
pub(crate) fn drain_errors() -> String {
    text(&drain_reasons())
}

/// Empty the calling thread's error queue, oldest first, keeping each
/// entry's library and reason codes.
pub(crate) fn drain_reasons() -> Vec<Reason> {
    let mut reasons = Vec::new();
    loop {
        // SAFETY: no preconditions; 0 means the queue is empty.
        let code = unsafe { sys::ERR_get_error() };
        if code == 0 {
            break;
        }
        let mut buf = [0 as libc::c_char; 256];
        // SAFETY: writes at most `buf.len()` bytes, NUL-terminated.
        unsafe { super::ERR_error_string_n(code, buf.as_mut_ptr(), buf.len()) };
        // SAFETY: ERR_error_string_n always NUL-terminates within `buf`.
        let line = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        reasons.push(Reason {
            library: sys::ERR_GET_LIB(code),
            reason: sys::ERR_GET_REASON(code),
            text: line.to_string_lossy().into_owned(),
        });
    }
    reasons
}

/// The queue's entries as one line.
pub(crate) fn text(reasons: &[Reason]) -> String {
    reasons.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Provoke an error: load a certificate file that does not exist.
    fn provoke() {
        // SAFETY: a fresh context, a valid C string, freed below.
        unsafe {
            let ctx = sys::SSL_CTX_new(sys::TLS_client_method());
            let rc = sys::SSL_CTX_use_certificate_chain_file(ctx, c"/nonexistent/reseau.pem".as_ptr());
            assert_eq!(rc, 0);
            sys::SSL_CTX_free(ctx);
        }
    }

    #[test]
    fn drain_empties_the_queue() {
        super::super::init();
        clear_errors();
        provoke();
        let msg = drain_errors();
        assert!(!msg.is_empty());
        assert_eq!(drain_errors(), "", "queue drained");
    }

    #[test]
    fn clear_empties_a_queue_that_holds_errors() {
        super::super::init();
        provoke();
        clear_errors();
        assert_eq!(drain_errors(), "", "queue cleared");
        clear_errors();
        assert_eq!(drain_errors(), "", "clearing an empty queue");
    }
}
