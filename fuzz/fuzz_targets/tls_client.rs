//! A TLS client engine fed arbitrary bytes as a server's, through the
//! memory BIOs (`tls::fuzzing::client_input`): it must fail cleanly, never
//! panic, crash or leak.
//!
//! Input: a byte picking the client configuration (`reseau_fuzz::client_configs`),
//! a byte picking the chunking (`tls::fuzzing::Schedule`), then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: {
    for config in reseau_fuzz::client_configs() {
        tls::fuzzing::client_input(config, &[]).expect("fuzz client config");
    }
}, |data: &[u8]| {
    let Some((config, input)) = reseau_fuzz::pick(reseau_fuzz::client_configs(), data) else { return };
    let report = tls::fuzzing::client_input(config, input).expect("client engine");
    // Every client speaks first: a ClientHello leaves before any input.
    assert!(report.output_len > 0, "no ClientHello: {report:?}");
    // Nobody can finish a handshake without the client's ephemeral key.
    assert!(!report.handshake_complete, "a fuzzed server finished a handshake: {report:?}");
});
