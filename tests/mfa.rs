//! Second factors end to end over HTTP: a user enrols an authenticator app the
//! way a phone reads it (the `otpauth://` URI), logs in with a password and a
//! code, steps up before sensitive operations, uses recovery codes, and an
//! administrator resets a lost phone; the organisation's policy makes users
//! enrol. Both backends. The TOTP arithmetic itself is checked against the
//! RFC 6238 test vectors in `src/auth/mfa.rs`.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code};
use serde_json::{Value, json};
use totp_rs::TOTP;

const LOGIN: &str = "mutation($e: String!, $p: String!) {
    login(email: $e, password: $p) { token mfaRequired mfaMethods mfaEnrollmentRequired }
}";
const VERIFY: &str =
    "mutation($c: String!) { verifyMfa(code: $c) { token mfaRequired user { email } } }";

/// An authenticator app on a phone: it knows only what the QR code held.
struct Phone {
    totp: TOTP,
    /// The time the enrolment's code was read at.
    enrolled_at: u64,
    /// The code typed to confirm the enrolment.
    first_code: String,
    recovery_codes: Vec<String>,
}

impl Phone {
    /// The code the app shows `steps` steps after the enrolment's code.
    fn code_after(&self, steps: u64) -> String {
        self.totp.generate(self.enrolled_at + 30 * steps)
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Enrol an app on the session of `token`, as a user does: start, scan,
/// confirm with the first code.
async fn enrol(app: &TestApp, token: &str) -> Phone {
    let started = app
        .ok(
            token,
            "mutation { startTotpEnrollment { secret otpauthUri qrCodeSvg } }",
            json!({}),
        )
        .await;
    let enrollment = &started["startTotpEnrollment"];
    let uri = enrollment["otpauthUri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Rollcall:"), "{uri}");
    assert!(
        enrollment["qrCodeSvg"].as_str().unwrap().contains("<svg"),
        "a QR code to scan"
    );
    let totp = TOTP::from_url(uri).unwrap();
    assert_eq!(
        totp.get_secret_base32(),
        enrollment["secret"].as_str().unwrap(),
        "the secret to type is the one the QR code holds"
    );
    assert_eq!((totp.digits, totp.step), (6, 30));
    let enrolled_at = now();
    let first_code = totp.generate(enrolled_at);
    let confirmed = app
        .ok(
            token,
            "mutation($c: String!) { confirmTotpEnrollment(code: $c) }",
            json!({ "c": first_code }),
        )
        .await;
    let recovery_codes: Vec<String> =
        serde_json::from_value(confirmed["confirmTotpEnrollment"].clone()).unwrap();
    assert_eq!(recovery_codes.len(), 10);
    Phone {
        totp,
        enrolled_at,
        first_code,
        recovery_codes,
    }
}

async fn login(app: &TestApp, email: &str) -> Value {
    let (status, body) = app
        .graphql(None, LOGIN, json!({ "e": email, "p": PASSWORD }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["login"].clone()
}

fn token(payload: &Value) -> String {
    payload["token"].as_str().unwrap().to_owned()
}

#[each_backend]
#[tokio::test]
async fn an_app_enrolled_from_its_qr_code_completes_logins_and_a_code_is_good_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Totp Clinic").await;
    app.user(org, "nurse@totp.test", &["Clinical Provider"])
        .await;
    let first = token(&login(&app, "nurse@totp.test").await);
    let phone = enrol(&app, &first).await;

    let mine = app
        .ok(
            &first,
            "{ myAuthenticators { kind name lastUsedAt } me { recoveryCodesLeft authenticators { kind } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["myAuthenticators"][0]["kind"], "TOTP");
    assert!(mine["myAuthenticators"][0]["lastUsedAt"].is_string());
    assert_eq!(mine["me"]["recoveryCodesLeft"], 10);
    assert_eq!(mine["me"]["authenticators"][0]["kind"], "TOTP");

    // A password alone now opens only a pending login.
    let pending = login(&app, "nurse@totp.test").await;
    assert_eq!(pending["mfaRequired"], true, "{backend:?}");
    assert_eq!(pending["mfaMethods"], json!(["TOTP", "RECOVERY_CODE"]));
    let pending = token(&pending);
    for query in [
        "{ me { email } }",
        "{ mySessions { id } }",
        "{ users(first: 1) { totalCount } }",
    ] {
        let (status, body) = app.graphql(Some(&pending), query, json!({})).await;
        assert_eq!(
            error_code(&body),
            "MFA_REQUIRED",
            "{query}: {status} {body}"
        );
    }

    // The code typed at enrolment was used: sent again, it is refused.
    let (_, body) = app
        .graphql(Some(&pending), VERIFY, json!({ "c": phone.first_code }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{backend:?} {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["fields"][0]["field"],
        "code"
    );

    // The app's next code completes the login with a new session.
    let next = phone.code_after(1);
    let (_, body) = app
        .graphql(Some(&pending), VERIFY, json!({ "c": next }))
        .await;
    let done = &body["data"]["verifyMfa"];
    assert_eq!(done["mfaRequired"], false, "{backend:?} {body}");
    let full = token(done);
    assert_ne!(
        full, pending,
        "the session is renewed once the login completes"
    );
    let (_, body) = app
        .graphql(Some(&pending), "{ me { email } }", json!({}))
        .await;
    assert_eq!(
        error_code(&body),
        "UNAUTHENTICATED",
        "the pending session ended"
    );

    let sessions = app
        .ok(
            &full,
            "{ mySessions { current authMethods mfaPending } }",
            json!({}),
        )
        .await;
    let current = sessions["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    assert_eq!(current["authMethods"], json!(["pwd", "otp"]), "{backend:?}");
    assert_eq!(current["mfaPending"], false);

    // The same code again, on any session, is a replay.
    let (_, body) = app.graphql(Some(&full), VERIFY, json!({ "c": next })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{backend:?} {body}");

    let audit = app.audit_actions(org).await;
    for action in [
        "mfa.totp_enrolled",
        "auth.login_mfa_pending",
        "auth.mfa_verified",
        "auth.mfa_failed",
    ] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
}

#[each_backend]
#[tokio::test]
async fn recovery_codes_complete_a_login_once_each(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Recovery Clinic").await;
    app.user(org, "nurse@recovery.test", &["Clinical Provider"])
        .await;
    let first = token(&login(&app, "nurse@recovery.test").await);
    let phone = enrol(&app, &first).await;
    let code = phone.recovery_codes[3].clone();

    let pending = token(&login(&app, "nurse@recovery.test").await);
    // Typed as people do: upper case, with spaces.
    let typed = format!(" {} ", code.to_uppercase());
    let (_, body) = app
        .graphql(Some(&pending), VERIFY, json!({ "c": typed }))
        .await;
    let full = token(&body["data"]["verifyMfa"]);
    let left = app
        .ok(&full, "{ me { recoveryCodesLeft } }", json!({}))
        .await;
    assert_eq!(left["me"]["recoveryCodesLeft"], 9, "{backend:?}");

    let pending = token(&login(&app, "nurse@recovery.test").await);
    let (_, body) = app
        .graphql(Some(&pending), VERIFY, json!({ "c": code }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "used once: {body}");

    // New codes replace the old ones, each shown once.
    let renewed = app
        .ok(&full, "mutation { regenerateRecoveryCodes }", json!({}))
        .await;
    let renewed: Vec<String> =
        serde_json::from_value(renewed["regenerateRecoveryCodes"].clone()).unwrap();
    let (_, body) = app
        .graphql(
            Some(&pending),
            VERIFY,
            json!({ "c": phone.recovery_codes[0] }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "old codes end: {body}");
    let (_, body) = app
        .graphql(Some(&pending), VERIFY, json!({ "c": renewed[0] }))
        .await;
    assert_eq!(body["data"]["verifyMfa"]["mfaRequired"], false, "{body}");
}

#[each_backend]
#[tokio::test]
async fn wrong_codes_lock_the_account_like_wrong_passwords_and_a_burst_of_one_code_wins_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Guess Clinic").await;
    app.user(org, "nurse@guess.test", &["Clinical Provider"])
        .await;
    let first = token(&login(&app, "nurse@guess.test").await);
    let phone = enrol(&app, &first).await;

    // Eight requests at once with one valid code: one login completes.
    let pending = token(&login(&app, "nurse@guess.test").await);
    let code = phone.code_after(1);
    let answers = futures_util::future::join_all(
        (0..8).map(|_| app.graphql(Some(&pending), VERIFY, json!({ "c": code }))),
    )
    .await;
    let completed = answers
        .iter()
        .filter(|(_, body)| body["data"]["verifyMfa"]["token"].is_string())
        .count();
    assert_eq!(completed, 1, "{backend:?}: {answers:?}");

    // Guessing: ten wrong codes, then the account is locked, for codes
    // and passwords alike.
    let pending = token(&login(&app, "nurse@guess.test").await);
    let mut codes = Vec::new();
    for guess in 0..12 {
        let (_, body) = app
            .graphql(
                Some(&pending),
                VERIFY,
                json!({ "c": format!("{:06}", 111_111 * (guess % 9 + 1)) }),
            )
            .await;
        codes.push(error_code(&body).to_owned());
    }
    assert!(
        codes.iter().any(|c| c == "RATE_LIMITED"),
        "{backend:?}: {codes:?}"
    );
    let limited_at = codes.iter().position(|c| c == "RATE_LIMITED").unwrap();
    assert!(limited_at <= 10, "locked within ten wrong codes: {codes:?}");
    let (_, body) = app
        .graphql(
            None,
            LOGIN,
            json!({ "e": "nurse@guess.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
}

#[each_backend]
#[tokio::test]
async fn sensitive_operations_need_a_second_factor_verified_on_the_session_within_minutes(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Step Clinic").await;
    app.user(org, "admin@step.test", &["Admin"]).await;
    let nurse = app.user(org, "nurse@step.test", &["Provider"]).await;
    // Two sessions before the admin has a second factor; one enrols.
    let enrolled = token(&login(&app, "admin@step.test").await);
    let other = token(&login(&app, "admin@step.test").await);
    let phone = enrol(&app, &enrolled).await;

    let roles = app.ok(&enrolled, "{ roles { id name } }", json!({})).await;
    let billing = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Billing")
        .unwrap()["id"]
        .clone();
    let set_roles =
        "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id } }";
    let vars = json!({ "u": nurse.to_string(), "r": [billing] });

    // The session that has not verified the new factor may read, not
    // change roles, reset passwords or export people.
    app.ok(&other, "{ users(first: 5) { totalCount } }", json!({}))
        .await;
    let (_, body) = app.graphql(Some(&other), set_roles, vars.clone()).await;
    assert_eq!(error_code(&body), "MFA_REQUIRED", "{backend:?} {body}");
    let (_, body) = app
        .graphql(
            Some(&other),
            "mutation($u: ID!) { resetUserPassword(id: $u) { generatedPassword } }",
            json!({ "u": nurse.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "MFA_REQUIRED", "{body}");
    let export = app
        .client
        .get(format!("{}/exports/users.csv", app.address))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 403);

    // The session that enrolled verified a code minutes ago: it may.
    app.ok(&enrolled, set_roles, vars.clone()).await;

    // Verifying on the other session keeps its token and lets it act.
    let stepped = app
        .ok(&other, VERIFY, json!({ "c": phone.code_after(1) }))
        .await;
    assert_eq!(stepped["verifyMfa"]["token"], other.as_str());
    app.ok(&other, set_roles, vars).await;
}

#[each_backend]
#[tokio::test]
async fn an_administrator_resets_a_lost_phone_and_the_users_sessions_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Reset Clinic").await;
    let admin = app.user(org, "admin@reset.test", &["Admin"]).await;
    let nurse = app.user(org, "nurse@reset.test", &["Provider"]).await;
    let nurse_session = token(&login(&app, "nurse@reset.test").await);
    enrol(&app, &nurse_session).await;
    let admin_token = token(&login(&app, "admin@reset.test").await);

    // The nurse may not reset anyone's factors.
    let reset = "mutation($u: ID!) { resetUserMfa(userId: $u) { email authenticators { kind } } }";
    let (_, body) = app
        .graphql(
            Some(&nurse_session),
            reset,
            json!({ "u": admin.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{backend:?} {body}");

    let seen = app
        .ok(
            &admin_token,
            "query($u: ID!) { user(id: $u) { authenticators { kind } recoveryCodesLeft } }",
            json!({ "u": nurse.to_string() }),
        )
        .await;
    assert_eq!(seen["user"]["authenticators"], json!([{ "kind": "TOTP" }]));
    assert_eq!(seen["user"]["recoveryCodesLeft"], 10);

    let done = app
        .ok(&admin_token, reset, json!({ "u": nurse.to_string() }))
        .await;
    assert_eq!(
        done["resetUserMfa"]["authenticators"],
        json!([]),
        "{backend:?}"
    );
    let (_, body) = app
        .graphql(Some(&nurse_session), "{ me { email } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "sessions ended");
    let again = login(&app, "nurse@reset.test").await;
    assert_eq!(again["mfaRequired"], false, "a password alone again");
    assert!(
        app.audit_actions(org)
            .await
            .iter()
            .any(|a| a == "user.reset_mfa")
    );
}

#[each_backend]
#[tokio::test]
async fn requiring_a_second_factor_of_everyone_stops_open_sessions_until_they_enrol(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let peer = app.peer().await;
    let org = app.organization("Policy Clinic").await;
    app.user(org, "admin@policy.test", &["Admin"]).await;
    app.user(org, "nurse@policy.test", &["Provider"]).await;
    let admin = token(&login(&app, "admin@policy.test").await);
    let nurse = token(&login(&app, "nurse@policy.test").await);
    let reader = peer.as_ref().unwrap_or(&app);
    reader.ok(&nurse, "{ mySessions { id } }", json!({})).await;

    let policy = "mutation($p: MfaPolicy!) { updateOrganization(input: { mfaRequired: $p }) { mfaRequired } }";
    // An admin without a factor may set the policy; it applies to them too.
    let (_, body) = app
        .graphql(Some(&admin), policy, json!({ "p": "PRIVILEGED" }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let (_, body) = app
        .graphql(Some(&admin), "{ mySessions { id } }", json!({}))
        .await;
    assert_eq!(
        error_code(&body),
        "MFA_ENROLLMENT_REQUIRED",
        "a privileged user must enrol at their next request: {body}"
    );
    // A plain provider is not privileged.
    reader.ok(&nurse, "{ mySessions { id } }", json!({})).await;
    enrol(&app, &admin).await;
    app.ok(&admin, policy, json!({ "p": "ALL" })).await;

    // On every instance, the nurse's open session may now only enrol.
    let (_, body) = reader
        .graphql(Some(&nurse), "{ mySessions { id } }", json!({}))
        .await;
    assert_eq!(
        error_code(&body),
        "MFA_ENROLLMENT_REQUIRED",
        "{backend:?} {body}"
    );
    reader.ok(&nurse, "{ me { email } }", json!({})).await;
    let fresh = login(&app, "nurse@policy.test").await;
    assert_eq!(fresh["mfaEnrollmentRequired"], true);
    enrol(reader, &nurse).await;
    reader.ok(&nurse, "{ mySessions { id } }", json!({})).await;
}
