//! A TLS server engine fed arbitrary bytes as a client's, through the
//! memory BIOs (`tls::fuzzing::server_input`): it must fail cleanly, never
//! panic, crash or leak.
//!
//! Input: a byte picking the server configuration (`reseau_fuzz::server_configs`),
//! a byte picking the chunking (`tls::fuzzing::Schedule`), then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: {
    // A configuration that cannot make a server is the harness's fault:
    // find out now, not as a "crash" on the first input.
    for config in reseau_fuzz::server_configs() {
        tls::fuzzing::server_input(config, &[]).expect("fuzz server config");
    }
}, |data: &[u8]| {
    let Some((config, input)) = reseau_fuzz::pick(reseau_fuzz::server_configs(), data) else { return };
    let report = tls::fuzzing::server_input(config, input).expect("server engine");
    // Nobody can finish a handshake without the client's keys.
    assert!(!report.handshake_complete, "a fuzzed client finished a handshake: {report:?}");
});
