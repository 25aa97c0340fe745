//! Deterministic, realistic request bodies for veil's benchmarks.
//!
//! The engine bench (criterion) and the end-to-end bench (`cargo xtask
//! bench`, h2load through Envoy) must scan the same kind of traffic, and a
//! rerun must scan the same bytes, so bodies come from a seeded generator
//! here rather than from files or a random crate. The shape is an order
//! export: JSON records with names (some non-ASCII), emails, phone numbers,
//! card numbers, order ids, UUIDs, timestamps, amounts and free text.
//!
//! * [`mixed_json`]: a few findings per KiB (emails, phone numbers,
//!   Luhn-valid cards, the odd SSN) mixed with look-alikes that must *not*
//!   match (order numbers, timestamps); no secrets, so requests are
//!   redacted, not blocked.
//! * [`clean_json`]: the same shape with nothing sensitive: the common case
//!   in production, where the filter must cost least.
//!
//! Every body is valid JSON of exactly the requested size.

/// SplitMix64: tiny, fast, and good enough to vary the records.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const FIRST: &[&str] = &[
    "Jane",
    "John",
    "Zoë",
    "Mateo",
    "Aiko",
    "Olúwaseun",
    "Priya",
    "Lars",
    "Chloé",
    "Wei",
    "Fatima",
    "Ivan",
    "Sofía",
    "Noah",
    "Amara",
    "Jürgen",
];
const LAST: &[&str] = &[
    "Doe", "Smith", "Müller", "García", "Tanaka", "Okafor", "Sharma", "Nilsson", "Dubois", "Chen",
    "Haddad", "Petrov", "López", "Brown", "Mensah", "Schäfer",
];
/// ASCII local parts for emails (the email detector follows RFC 5321).
const LOCAL: &[&str] = &[
    "jane.doe",
    "jsmith",
    "zoe.m",
    "mateo_g",
    "aiko.t",
    "o.okafor",
    "priya.sharma",
    "lars",
    "chloe+news",
    "wei.chen",
    "f.haddad",
    "ivan.p",
    "sofia.lopez",
    "noah.b",
    "amara",
    "j.schafer",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example.co.uk",
    "example.io",
];
const CITIES: &[&str] = &[
    "Berlin",
    "São Paulo",
    "東京",
    "Lagos",
    "Toronto",
    "Zürich",
    "Mumbai",
    "Austin",
];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "JPY", "BRL", "INR"];
const STATUS: &[&str] = &["paid", "pending", "shipped", "refunded", "cancelled"];
const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in \
reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint \
occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. ";

/// Whether records carry personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Emails, card numbers and SSNs (redacted by the default bundle).
    Mixed,
    /// Same shape, nothing the default bundle reports.
    Clean,
}

/// A JSON body of exactly `size` bytes with a few findings per KiB.
pub fn mixed_json(size: usize, seed: u64) -> Vec<u8> {
    json_body(size, seed, Kind::Mixed)
}

/// A JSON body of exactly `size` bytes with nothing sensitive in it.
pub fn clean_json(size: usize, seed: u64) -> Vec<u8> {
    json_body(size, seed, Kind::Clean)
}

/// `[record, record, ..., filler]`, exactly `size` bytes (at least 2).
pub fn json_body(size: usize, seed: u64, kind: Kind) -> Vec<u8> {
    assert!(size >= 2, "the smallest JSON array is 2 bytes");
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(size);
    out.push(b'[');
    let mut first = true;
    loop {
        let rec = record(&mut rng, kind);
        let sep = usize::from(!first);
        if out.len() + sep + rec.len() + 1 > size {
            break;
        }
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(rec.as_bytes());
        first = false;
    }
    // Fill the rest with one `{"note":"lorem..."}` of the exact length, or
    // with whitespace when even an empty note does not fit.
    let remaining = size - out.len() - 1;
    let empty_note = usize::from(!first) + r#"{"note":""}"#.len();
    if remaining >= empty_note {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"note":""#);
        let mut n = remaining - empty_note;
        while n > 0 {
            let take = n.min(LOREM.len());
            out.extend_from_slice(&LOREM.as_bytes()[..take]);
            n -= take;
        }
        out.extend_from_slice(b"\"}");
    } else {
        out.resize(out.len() + remaining, b' ');
    }
    out.push(b']');
    debug_assert_eq!(out.len(), size);
    out
}

/// One order record, 350-600 bytes.
fn record(rng: &mut Rng, kind: Kind) -> String {
    let id = uuid(rng);
    let order = format!("ORD-{}-{:06}", 2020 + rng.below(7), rng.below(1_000_000));
    let ts = timestamp(rng);
    let name = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
    let local = *rng.pick(LOCAL);
    // North American phone: 3-3-4 digits, 11 with the country code; never
    // a card (too short) or an SSN (wrong grouping).
    let phone = format!(
        "+1 {}-{:03}-{:04}",
        200 + rng.below(700),
        rng.below(1000),
        rng.below(10_000)
    );
    // Phone numbers are PII the catalogue finds: only mixed bodies carry one.
    let phone = match kind {
        Kind::Mixed => format!(r#""phone":"{phone}""#),
        _ => format!(r#""desk":"ext. {:04}""#, rng.below(10_000)),
    };
    let contact = match kind {
        Kind::Mixed if rng.chance(70) => {
            format!(
                r#""email":"{}{}@{}""#,
                local,
                rng.below(100),
                rng.pick(DOMAINS)
            )
        }
        _ => format!(
            r#""username":"{}{}""#,
            local.replace(['.', '+'], "_"),
            rng.below(100)
        ),
    };
    let payment = match kind {
        Kind::Mixed if rng.chance(35) => format!(r#""card":"{}""#, card(rng)),
        _ => format!(
            r#""card_last4":"{:04}","card_token":"tok_{:016x}""#,
            rng.below(10_000),
            rng.next_u64()
        ),
    };
    let ssn = match kind {
        Kind::Mixed if rng.chance(8) => format!(
            r#","tax":{{"ssn":"{:03}-{:02}-{:04}"}}"#,
            101 + rng.below(560),
            1 + rng.below(98),
            1 + rng.below(9998)
        ),
        _ => String::new(),
    };
    let amount_cents = rng.below(500_000);
    let items: Vec<String> = (0..1 + rng.below(3))
        .map(|_| {
            format!(
                r#"{{"sku":"SKU-{:05}","qty":{},"unit_price":{}.{:02}}}"#,
                rng.below(100_000),
                1 + rng.below(5),
                rng.below(500),
                rng.below(100)
            )
        })
        .collect();
    let start = rng.below(LOREM.len() as u64 / 2) as usize;
    let len = 40 + rng.below(120) as usize;
    let note = LOREM[start..(start + len).min(LOREM.len())].trim();
    format!(
        concat!(
            r#"{{"id":"{id}","order":"{order}","created_at":"{ts}","status":"{status}","#,
            r#""customer":{{"name":"{name}",{contact},{phone},"city":"{city}"}},"#,
            r#""payment":{{{payment},"amount":{units}.{cents:02},"currency":"{cur}"}}{ssn},"#,
            r#""items":[{items}],"note":"{note}"}}"#
        ),
        id = id,
        order = order,
        ts = ts,
        status = rng.pick(STATUS),
        name = name,
        contact = contact,
        phone = phone,
        city = rng.pick(CITIES),
        payment = payment,
        units = amount_cents / 100,
        cents = amount_cents % 100,
        cur = rng.pick(CURRENCIES),
        ssn = ssn,
        items = items.join(","),
        note = note,
    )
}

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

fn timestamp(rng: &mut Rng) -> String {
    format!(
        "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        20 + rng.below(7),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

/// A Luhn-valid card number with a real issuer prefix, plain, spaced or
/// dashed, as people paste them.
fn card(rng: &mut Rng) -> String {
    let (prefix, len): (&str, usize) = *rng.pick(&[
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
    ]);
    let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while digits.len() < len - 1 {
        digits.push(rng.below(10) as u8);
    }
    digits.push(luhn_check_digit(&digits));
    let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let sep = *rng.pick(&["", " ", "-"]);
    if sep.is_empty() {
        return s;
    }
    let groups: &[usize] = if len == 15 { &[4, 6, 5] } else { &[4, 4, 4, 4] };
    let mut out = String::new();
    let mut at = 0;
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&s[at..at + g]);
        at += g;
    }
    out
}

/// The digit that makes `payload` + digit pass the Luhn check.
pub fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// `body` with every non-ASCII character written as a `\uXXXX` escape (a
/// surrogate pair above U+FFFF), as `json.dumps` does by default: the
/// workload where the JSON-aware scanner must decode.
pub fn ascii_escaped(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::with_capacity(body.len() + body.len() / 8);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
            }
        }
    }
    out
}

/// Size labels used in bench ids and reports: 1KiB, 64KiB, 1MiB.
pub fn size_label(bytes: usize) -> String {
    // Whole multiples only: 1536 is "1536B", not "1KiB".
    if bytes >= 1 << 20 && bytes.trailing_zeros() >= 20 {
        format!("{}MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.trailing_zeros() >= 10 {
        format!("{}KiB", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_engine::{CompiledPolicy, Decision, Direction, Target};

    const JSON: Target<'static> = Target::Body {
        content_type: Some("application/json"),
    };

    #[test]
    fn bodies_are_valid_json_of_the_exact_size_and_deterministic() {
        for size in [2, 5, 20, 100, 1024, 4096, 65536, 1 << 20] {
            for kind in [Kind::Mixed, Kind::Clean] {
                let body = json_body(size, 7, kind);
                assert_eq!(body.len(), size, "{kind:?} {size}");
                let v: serde_json::Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{kind:?} {size}: {e}"));
                assert!(v.is_array());
                assert_eq!(body, json_body(size, 7, kind));
            }
        }
        assert_ne!(mixed_json(4096, 1), mixed_json(4096, 2));
    }

    #[test]
    fn luhn_check_digit_matches_known_numbers() {
        let payload: Vec<u8> = b"411111111111111".iter().map(|b| b - b'0').collect();
        assert_eq!(luhn_check_digit(&payload), 1);
        let payload: Vec<u8> = b"37828224631000".iter().map(|b| b - b'0').collect();
        assert_eq!(luhn_check_digit(&payload), 5);
    }

    #[test]
    fn clean_bodies_have_no_findings_in_either_direction() {
        let p = CompiledPolicy::embedded_default().unwrap();
        for seed in 0..4 {
            let body = clean_json(256 << 10, seed);
            for d in [Direction::Request, Direction::Response] {
                let f = p.scan(d, JSON, &body);
                assert!(
                    f.is_empty(),
                    "seed {seed}: {:?}",
                    f.iter()
                        .map(|f| String::from_utf8_lossy(&body[f.start..f.end]).into_owned())
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn mixed_bodies_have_a_few_findings_per_kib_and_are_redacted_not_blocked() {
        let p = CompiledPolicy::embedded_default().unwrap();
        let body = mixed_json(64 << 10, 42);
        let ins = p.inspect(Direction::Request, JSON, &body);
        assert_eq!(ins.decision, Decision::Redact);
        let per_kib = ins.findings.len() as f64 / 64.0;
        assert!((1.0..=6.0).contains(&per_kib), "{per_kib} findings per KiB");
        let cats: std::collections::HashSet<&str> =
            ins.findings.iter().map(|f| &*f.category).collect();
        for c in ["pii.email", "pii.payment_card", "pii.us_ssn"] {
            assert!(cats.contains(c), "{c} missing from {cats:?}");
        }
        let redacted = ins.rewritten.unwrap();
        serde_json::from_slice::<serde_json::Value>(&redacted).expect("redacted JSON stays valid");
    }

    #[test]
    fn escaped_bodies_parse_to_the_same_value() {
        let body = mixed_json(8192, 3);
        let escaped = ascii_escaped(&body);
        assert!(escaped.is_ascii() && escaped.len() > body.len());
        let a: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&escaped).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn size_labels() {
        assert_eq!(size_label(1024), "1KiB");
        assert_eq!(size_label(65536), "64KiB");
        assert_eq!(size_label(1 << 20), "1MiB");
        assert_eq!(size_label(1000), "1000B");
    }
}
