//! Path globs for rules: `*` matches within one path segment, `**` across
//! segments, `?` one character; everything else is literal. Matching is
//! iterative with one backtrack point per star kind, so a hostile pattern
//! costs O(pattern × path), never exponential time.

pub fn matches(pattern: &str, path: &str) -> bool {
    let p = pattern.as_bytes();
    let s = path.as_bytes();
    let (mut pi, mut si) = (0usize, 0usize);
    // Backtrack point for the last `*` (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    // Backtrack point for the last `**`: it may swallow `/`.
    let mut dstar: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' if p.get(pi + 1) == Some(&b'*') => {
                    pi += 2;
                    dstar = Some((pi, si));
                    star = None;
                    continue;
                }
                b'*' => {
                    pi += 1;
                    star = Some((pi, si));
                    continue;
                }
                b'?' if s[si] != b'/' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        if let Some((sp, ss)) = star {
            if s[ss] != b'/' {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
                continue;
            }
        }
        if let Some((dp, ds)) = dstar {
            dstar = Some((dp, ds + 1));
            star = None;
            pi = dp;
            si = ds + 1;
            continue;
        }
        return false;
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The literal part of a pattern before its first metacharacter: the
/// in-kernel prefix filter for file opens.
pub fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '?']).unwrap_or(pattern.len());
    &pattern[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_stars() {
        assert!(matches("/etc/shadow", "/etc/shadow"));
        assert!(!matches("/etc/shadow", "/etc/shadow-"));
        assert!(matches("/etc/sudoers*", "/etc/sudoers"));
        assert!(matches("/etc/sudoers*", "/etc/sudoers.d"));
        assert!(!matches("/etc/sudoers*", "/etc/sudoers.d/admins"));
        assert!(matches("/etc/sudoers**", "/etc/sudoers.d/admins"));
        assert!(matches("/root/.ssh/*", "/root/.ssh/id_ed25519"));
        assert!(!matches("/root/.ssh/*", "/root/.ssh"));
        assert!(matches(
            "/home/*/.aws/credentials",
            "/home/ann/.aws/credentials"
        ));
        assert!(!matches(
            "/home/*/.aws/credentials",
            "/home/a/b/.aws/credentials"
        ));
        assert!(matches(
            "/home/**/.aws/credentials",
            "/home/a/b/.aws/credentials"
        ));
        assert!(matches("/tmp/x?", "/tmp/x1"));
        assert!(!matches("/tmp/x?", "/tmp/x/"));
    }

    #[test]
    fn hostile_pattern_terminates_with_the_right_answer() {
        // Exponential backtracking would not finish; the linear matcher
        // answers at once.
        let p = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let s = "a".repeat(4000);
        assert!(!matches(p, &s));
        assert!(matches(p, &format!("{s}b")));
    }

    #[test]
    fn prefixes() {
        assert_eq!(literal_prefix("/etc/sudoers*"), "/etc/sudoers");
        assert_eq!(literal_prefix("/home/*/.aws/credentials"), "/home/");
        assert_eq!(literal_prefix("/etc/shadow"), "/etc/shadow");
        assert_eq!(literal_prefix("**/id_rsa"), "");
    }
}
