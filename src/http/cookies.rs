//! The browser session cookie.

use crate::app::AppState;

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

/// The value of the session cookie the request carries, if any.
pub fn session_cookie_value(req: &poem::Request) -> Option<&str> {
    let name = cookie_name(
        req.data::<AppState>()
            .is_none_or(|state| state.config.secure_cookies),
    );
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
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
}
