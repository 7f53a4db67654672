//! Well-known TCP services, for when the system's services database lacks
//! a name (minimal containers often ship no `/etc/services`).

/// The port of a well-known TCP service (case-insensitive), as Go's table.
pub(crate) fn well_known(service: &str) -> Option<u16> {
    const TABLE: &[(&str, u16)] = &[
        ("ftp", 21),
        ("ftps", 990),
        ("gopher", 70),
        ("http", 80),
        ("https", 443),
        ("imap2", 143),
        ("imap3", 220),
        ("imaps", 993),
        ("pop3", 110),
        ("pop3s", 995),
        ("smtp", 25),
        ("submissions", 465),
        ("ssh", 22),
        ("telnet", 23),
    ];
    TABLE.iter().find(|(name, _)| name.eq_ignore_ascii_case(service)).map(|&(_, port)| port)
}

/// The error for a service nobody knows.
pub(crate) fn unknown(service: &str) -> crate::LookupError {
    crate::LookupError {
        host: format!("tcp/{service}"),
        message: "unknown port".into(),
        is_not_found: true,
        is_timeout: false,
    }
}
