//! The browser session cookie, set, cleared and read in this one place (by
//! the login mutations, the invite page and every request's session check).

pub const SESSION_COOKIE: &str = "rollcall_session";

/// The session cookie's name. When cookies are Secure it carries the `__Host-`
/// prefix: browsers then keep it only from a secure origin, for this host
/// alone, and refuse it from a sibling subdomain or a plain-HTTP page.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-rollcall_session"
    } else {
        SESSION_COOKIE
    }
}

/// The value of the session cookie among a request's `Cookie` headers, if
/// any: only the name `secure` calls for counts.
pub fn session_cookie_value<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    secure: bool,
) -> Option<&'a str> {
    let name = cookie_name(secure);
    cookie_headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The session cookie: HttpOnly, SameSite=Lax, Path=/, Secure (and
/// `__Host-`) unless turned off. No Max-Age: the server decides when the
/// session ends.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let name = cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={token}; HttpOnly; SameSite=Lax; Path=/{secure}")
}

pub fn clear_session_cookie(secure: bool) -> String {
    let name = cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secure_cookie_is_host_prefixed_and_a_local_one_is_not() {
        assert!(session_cookie("t", true).starts_with("__Host-rollcall_session=t;"));
        assert!(session_cookie("t", true).ends_with("; Path=/; Secure"));
        assert!(session_cookie("t", false).starts_with("rollcall_session=t;"));
        assert!(clear_session_cookie(true).starts_with("__Host-rollcall_session=;"));
    }

    #[test]
    fn only_the_cookie_of_the_configured_name_is_read() {
        let headers = [
            "theme=dark; rollcall_session=plain",
            "__Host-rollcall_session=\"host\"",
        ];
        assert_eq!(session_cookie_value(headers, true), Some("host"));
        assert_eq!(session_cookie_value(headers, false), Some("plain"));
        assert_eq!(session_cookie_value(["theme=dark"], true), None);
    }
}
