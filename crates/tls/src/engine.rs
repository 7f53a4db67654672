//! The TLS engine: protocol state that never does I/O.
//!
//! [`Engine`] owns the `SSL` and the ciphertext waiting for the socket.
//! Ciphertext from the peer goes in with [`feed`](Engine::feed);
//! ciphertext for the peer comes out of [`output`](Engine::output).
//! Every protocol call (a handshake step, a read, a write, close_notify)
//! runs as far as the bytes fed so far allow and says what it needs next
//! as a [`Step`]. Moving bytes to and from a socket, and waiting, is the
//! drivers' business: the blocking and `Waker` paths of [`Conn`] and the
//! fuzz targets all drive this one type, made by [`Engine::client`] or
//! [`Engine::server`]. The engine never looks at its drivers' code.
//!
//! [`Conn`]: crate::Conn

use std::net::IpAddr;

use crate::config::{Config, Version};
use crate::error::{ConfigError, Error, TlsError};
pub(crate) use crate::ffi::Progress;
use crate::ffi::{Chosen, HelloInfo, Outcome, Ssl};
use crate::state::ConnectionState;

/// Plaintext per `SSL_write`: one full record, so that a write cut short
/// can count the records that fully reached the peer.
pub(crate) const RECORD: usize = 16 * 1024;

/// What a protocol call came to, and so what the engine needs next.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// It completed. Output may be waiting: drain it.
    Done(T),
    /// It needs more ciphertext from the peer: feed some, then call again.
    NeedInput,
    /// The peer sent close_notify: no more plaintext comes.
    PeerClosed,
    /// A fatal protocol error (an alert, a forged record, a failed
    /// verification). Output may hold the alert for the peer.
    Failed(TlsError),
}

/// Where a written record's ciphertext ends in the output stream, and how
/// much of the caller's plaintext was taken once it is out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordEnd {
    end: u64,
    taken: usize,
}

/// An `SSL` on memory BIOs and the ciphertext it produced for the peer.
pub(crate) struct Engine {
    ssl: Ssl,
    /// Ciphertext produced and not yet handed to the socket, in order.
    out: Vec<u8>,
    /// Ciphertext bytes ever produced, and ever reported sent: a record
    /// produced up to offset e has left once `sent >= e`.
    produced: u64,
    sent: u64,
    /// close_notify is queued: no more plaintext may be written.
    write_closed: bool,
}

impl Engine {
    pub(crate) fn new(ssl: Ssl) -> Engine {
        Engine { ssl, out: Vec::new(), produced: 0, sent: 0, write_closed: false }
    }

    /// A client engine for `config`: SNI and name verification for `name`
    /// (unless `config.server_name` overrides it), session resumption
    /// filed under the name, or under `peer` when there is none (as Go and
    /// rustls do: one service reached through several addresses resumes
    /// across them). [`Conn`] and the fuzzing entry points both start here,
    /// so they drive identically configured engines.
    ///
    /// [`Conn`]: crate::Conn
    pub(crate) fn client(config: &Config, name: Option<&str>, peer: &str) -> Result<Engine, Error> {
        let ctx = config.client_ctx().map_err(Error::Config)?;
        let s = config.settings();
        // A fully qualified "example.com." names the same host: the dot goes
        // neither into SNI nor into the name check (as Go does).
        let name =
            s.server_name.as_deref().or(name).map(|n| n.strip_suffix('.').unwrap_or(n)).filter(|n| !n.is_empty());
        let verify_name = s.verify_hostname();
        if verify_name && name.is_none() {
            return Err(Error::Config(ConfigError(
                "no server name to verify: set server_name, dial a host name, or turn verify_peer off".into(),
            )));
        }
        let tls_err = |m| Error::Tls(TlsError::new("handshake", m));
        let mut ssl = Ssl::new(&ctx, false).map_err(tls_err)?;
        if let Some(name) = name {
            match name.parse::<IpAddr>() {
                // An IP literal is never sent as SNI (RFC 6066).
                Ok(ip) if verify_name => ssl.verify_ip(ip).map_err(tls_err)?,
                Ok(_) => {}
                Err(_) => {
                    ssl.set_sni(name).map_err(tls_err)?;
                    if verify_name {
                        ssl.verify_host(name).map_err(tls_err)?;
                    }
                }
            }
        }
        // Without resumption nothing is ever cached: no key, no lookup.
        if s.session_resumption {
            ssl.use_session_cache(config.sessions(), name.unwrap_or(peer));
        }
        Ok(Engine::new(ssl))
    }

    /// A server engine for `config`.
    pub(crate) fn server(config: &Config) -> Result<Engine, Error> {
        let ctx = config.server_ctx().map_err(Error::Config)?;
        Ssl::new(&ctx, true).map(Engine::new).map_err(|m| Error::Tls(TlsError::new("handshake", m)))
    }

    /// Ciphertext from the peer.
    pub(crate) fn feed(&mut self, ciphertext: &[u8]) {
        self.ssl.feed(ciphertext);
    }

    /// Ciphertext for the peer, oldest first.
    pub(crate) fn output(&self) -> &[u8] {
        &self.out
    }

    /// The first `n` bytes of [`output`](Engine::output) reached the socket.
    pub(crate) fn consume(&mut self, n: usize) {
        self.out.drain(..n);
        self.sent += n as u64;
    }

    /// Take all of the output at once, for a driver that sends it with the
    /// engine unlocked; hand the buffer back with [`restore`](Engine::restore).
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The buffer from [`take_output`](Engine::take_output), of which the
    /// first `sent` bytes reached the socket. Unsent bytes go back in
    /// front of whatever was produced meanwhile; the allocation is kept.
    pub(crate) fn restore(&mut self, mut taken: Vec<u8>, sent: usize) {
        self.sent += sent as u64;
        taken.drain(..sent);
        taken.append(&mut self.out);
        self.out = taken;
    }

    /// Whether the handshake has finished.
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub(crate) fn is_handshake_done(&self) -> bool {
        self.ssl.is_handshake_done()
    }

    /// Whether close_notify has been queued.
    pub(crate) fn is_write_closed(&self) -> bool {
        self.write_closed
    }

    /// Advance the handshake: `Done(Finished)` once it is complete, and
    /// `Done(Flight)` where a flight is complete and must be sent before
    /// the next call (see [`Progress`]).
    pub(crate) fn handshake(&mut self) -> Step<Progress> {
        self.call("handshake", Ssl::handshake)
    }

    /// Decrypt into `buf` (not empty). `Done(n)` has `n > 0`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Step<usize> {
        self.call("read", |ssl| ssl.read(buf))
    }

    /// Encrypt up to `buf.len()` bytes, one record per `SSL_write`, noting
    /// in `records` where each record ends in the output. `Done(n)`: `n`
    /// bytes taken (all of `buf` unless a later record failed, in which case
    /// the failure comes back on the next call).
    pub(crate) fn write(&mut self, buf: &[u8], records: &mut Vec<RecordEnd>) -> Step<usize> {
        if self.write_closed {
            return Step::Failed(TlsError::new("write", "write after close_notify"));
        }
        let mut taken = 0;
        while taken < buf.len() {
            let chunk = &buf[taken..buf.len().min(taken + RECORD)];
            match self.call("write", |ssl| ssl.write(chunk)) {
                Step::Done(n) => {
                    taken += n;
                    records.push(RecordEnd { end: self.produced, taken });
                }
                other if taken == 0 => return other,
                _ => break,
            }
        }
        Step::Done(taken)
    }

    /// Of the records `write` noted, the plaintext whose ciphertext has
    /// reached the socket in full.
    pub(crate) fn delivered(&self, records: &[RecordEnd]) -> usize {
        records.iter().take_while(|r| r.end <= self.sent).last().map_or(0, |r| r.taken)
    }

    /// Queue close_notify; later writes fail. Idempotent.
    pub(crate) fn close_notify(&mut self) -> Step<()> {
        if self.write_closed {
            return Step::Done(());
        }
        self.write_closed = true;
        self.call("close_write", Ssl::shutdown)
    }

    /// The negotiated parameters; defaults before the handshake finished.
    pub(crate) fn connection_state(&self) -> ConnectionState {
        if !self.ssl.is_handshake_done() {
            return ConnectionState::default();
        }
        ConnectionState {
            handshake_complete: true,
            version: Version::from_raw(self.ssl.version()),
            alpn_protocol: self.ssl.alpn(),
            cipher_suite: self.ssl.cipher(),
            group: self.ssl.group(),
            server_name: self.ssl.server_name(),
            peer_certificates: self.ssl.peer_certificates(),
            session_resumed: self.ssl.session_reused(),
            ocsp_response: self.ssl.ocsp_response(),
        }
    }

    /// RFC 5705 / RFC 8446 §7.5 keying material; the handshake must be done.
    pub(crate) fn export_keying_material(
        &self,
        label: &str,
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, String> {
        self.ssl.export_keying_material(label, context, len)
    }

    /// What a suspended server handshake's certificate resolver should look
    /// at (after `Done(Progress::Certificate)`).
    pub(crate) fn hello_asked(&self) -> Option<HelloInfo> {
        self.ssl.hello_asked()
    }

    /// The resolver's answer; the next [`handshake`](Engine::handshake)
    /// applies it.
    pub(crate) fn answer_hello(&mut self, answer: Result<Option<Chosen>, ()>) {
        self.ssl.answer_hello(answer);
    }

    /// The negotiated ALPN protocol, if any.
    pub(crate) fn alpn(&self) -> Option<String> {
        self.ssl.alpn()
    }

    /// The SNI name sent (client) or received (server), at any stage.
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub(crate) fn server_name(&self) -> Option<String> {
        self.ssl.server_name()
    }

    /// The peer's certificates, DER encoded, leaf first, at any stage.
    pub(crate) fn peer_certificates(&self) -> Vec<Vec<u8>> {
        self.ssl.peer_certificates()
    }

    /// Run one OpenSSL call with the output buffer lent to the write BIO,
    /// so what the call produces is appended to it in place (no copy), and
    /// translate its outcome.
    fn call<T>(&mut self, op: &'static str, f: impl FnOnce(&mut Ssl) -> Outcome<T>) -> Step<T> {
        let before = self.out.len();
        self.ssl.lend_output(&mut self.out);
        let outcome = f(&mut self.ssl);
        self.ssl.take_output(&mut self.out);
        self.produced += (self.out.len() - before) as u64;
        match outcome {
            Outcome::Done(v) => Step::Done(v),
            Outcome::WantRead => Step::NeedInput,
            Outcome::Closed => Step::PeerClosed,
            Outcome::Failed { code, message, cause } => Step::Failed(TlsError { op, code, message, cause }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Config;

    /// The fuzz targets' committed test PKI (fuzz/certs/make.sh).
    fn cert(name: &str) -> String {
        format!("{}/../../fuzz/certs/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// A server on the test PKI, capped at `max` if given.
    pub(crate) fn server_config(max: Option<Version>) -> Config {
        let b = Config::builder().cert_file(cert("server.pem")).key_file(cert("server.key"));
        let b = if let Some(v) = max { b.max_version(v) } else { b };
        b.build().unwrap()
    }

    /// A client trusting the test PKI, for "localhost", capped at `max`.
    pub(crate) fn client_config(max: Option<Version>) -> Config {
        let b = Config::builder().ca_file(cert("ca.pem")).server_name("localhost");
        let b = if let Some(v) = max { b.max_version(v) } else { b };
        b.build().unwrap()
    }

    /// One handshake step; a `Flight` must come with output queued.
    fn step(e: &mut Engine, who: &str) -> Step<Progress> {
        let step = e.handshake();
        if let Step::Done(Progress::Flight) = step {
            assert!(!e.output().is_empty(), "{who}: a Flight step with nothing to send");
        }
        step
    }

    /// Hand `from`'s output to `to`.
    fn pass(from: &mut Engine, to: &mut Engine) {
        let out = from.take_output();
        to.feed(&out);
    }

    /// A flight leaves where OpenSSL flushes it, before the work that
    /// follows: the server's step on the ClientHello stops with its whole
    /// flight queued (`Flight`), and only the next step, with nothing new
    /// to read, goes on (deriving the application keys) to wait for input,
    /// queueing nothing. The client's Finished is queued by a `Flight` step
    /// of its own, and the handshake completes in the next, without more
    /// output. Both versions still complete in memory.
    #[test]
    fn handshake_steps_stop_at_each_flight() {
        let mut c = Engine::client(&client_config(None), None, "test").unwrap();
        let mut s = Engine::server(&server_config(None)).unwrap();
        while matches!(step(&mut c, "client"), Step::Done(Progress::Flight)) {
            pass(&mut c, &mut s);
        }
        pass(&mut c, &mut s);
        assert!(matches!(step(&mut s, "server"), Step::Done(Progress::Flight)), "the server's flight, at once");
        let flight = s.take_output();
        assert_eq!(flight[..3], [0x16, 0x03, 0x03], "a ServerHello record first");
        assert!(matches!(step(&mut s, "server"), Step::NeedInput));
        assert!(s.output().is_empty(), "the flight was complete");
        c.feed(&flight);
        assert!(matches!(step(&mut c, "client"), Step::Done(Progress::Flight)), "the client's Finished, at once");
        pass(&mut c, &mut s);
        assert!(matches!(step(&mut c, "client"), Step::Done(Progress::Finished)));
        assert!(c.output().is_empty(), "nothing after the Finished");
        loop {
            match step(&mut s, "server") {
                Step::Done(Progress::Flight) => pass(&mut s, &mut c),
                Step::Done(Progress::Finished) => break,
                other => panic!("server after the client's Finished: {other:?}"),
            }
        }
        assert_eq!(c.connection_state().version, Some(Version::Tls13));

        let (client, server) = (client_config(Some(Version::Tls12)), server_config(Some(Version::Tls12)));
        let mut c = Engine::client(&client, None, "test").unwrap();
        let mut s = Engine::server(&server).unwrap();
        let (mut c_done, mut s_done) = (false, false);
        for _ in 0..16 {
            c_done = c_done || matches!(step(&mut c, "client"), Step::Done(Progress::Finished));
            pass(&mut c, &mut s);
            s_done = s_done || matches!(step(&mut s, "server"), Step::Done(Progress::Finished));
            pass(&mut s, &mut c);
        }
        assert!(c_done && s_done, "a TLS 1.2 handshake in memory");
        assert_eq!(s.connection_state().version, Some(Version::Tls12));
    }

    /// A server that chooses an ALPN protocol the client never offered
    /// fails the client's handshake (Go's `checkALPN`).
    #[test]
    fn a_client_refuses_an_alpn_protocol_it_did_not_offer() {
        use crate::ffi::{SslCtx, parse_certs, parse_key};
        use std::sync::Arc;
        let mut ctx = SslCtx::new(true).unwrap();
        let chain = parse_certs(&std::fs::read(cert("server.pem")).unwrap()).unwrap();
        let key = parse_key(&std::fs::read(cert("server.key")).unwrap(), None).unwrap();
        ctx.use_key_pair(&crate::ffi::KeyPair { chain, key }).unwrap();
        ctx.choose_alpn_regardless(b"\x04evil".to_vec());
        let ctx = Arc::new(ctx);
        let client = Config::builder().ca_file(cert("ca.pem")).server_name("localhost").alpn_protocols(["h2"]);
        for max in [Version::Tls13, Version::Tls12] {
            let client = client.clone().max_version(max).build().unwrap();
            let mut c = Engine::client(&client, None, "test").unwrap();
            let mut s = Engine::new(Ssl::new(&ctx, true).unwrap());
            let mut failed = None;
            for _ in 0..16 {
                match step(&mut c, "client") {
                    Step::Failed(e) => {
                        failed = Some(e);
                        break;
                    }
                    Step::Done(Progress::Finished) => break,
                    _ => {}
                }
                pass(&mut c, &mut s);
                let _ = step(&mut s, "server");
                pass(&mut s, &mut c);
            }
            let e =
                failed.unwrap_or_else(|| panic!("{max}: the client accepted {:?}", c.connection_state().alpn_protocol));
            // OpenSSL checks it during the handshake (SSL_R_BAD_EXTENSION,
            // with an alert); `Conn` checks again once it is done, for a
            // library that would not.
            assert!(e.message.contains("bad extension"), "{max}: {e:?}");
        }
    }
}
