//! Passkeys end to end over HTTP with a software authenticator (the
//! webauthn-authenticator-rs soft token), as a browser hands the server's
//! options to a device and its answer back: registration of several named
//! keys, a login without a password, a key as the second factor of a password
//! login, a device that names its own user, and what must be refused: another
//! origin, another relying party, a cloned key whose counter went back, an
//! answer sent twice. Both backends.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code};
use serde_json::{Value, json};
use webauthn_authenticator_rs::{
    WebauthnAuthenticator,
    prelude::{CreationChallengeResponse, RequestChallengeResponse, Url},
    softtoken::SoftToken,
};

/// The origin the tests' server accepts (`tests/common`).
const ORIGIN: &str = "https://rollcall.test";

const FINISH_LOGIN: &str = "mutation($c: JSON!) {
    finishWebAuthnLogin(credential: $c) { token mfaRequired user { email } }
}";

/// A device with a platform authenticator that verifies its user.
fn device() -> SoftToken {
    SoftToken::new(true).unwrap().0
}

/// Register `device` on the session of `token` under `name`, as a browser
/// would; the answer's JSON is returned too.
async fn register(app: &TestApp, token: &str, device: &mut SoftToken, name: &str) -> Value {
    let options = app
        .ok(token, "mutation { startWebAuthnRegistration }", json!({}))
        .await;
    let options: CreationChallengeResponse =
        serde_json::from_value(options["startWebAuthnRegistration"].clone()).unwrap();
    assert_eq!(options.public_key.rp.id, "rollcall.test");
    let answer = device
        .do_registration(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    let done = app
        .ok(
            token,
            "mutation($n: String!, $c: JSON!) { finishWebAuthnRegistration(name: $n, credential: $c) { kind name } }",
            json!({ "n": name, "c": serde_json::to_value(&answer).unwrap() }),
        )
        .await;
    assert_eq!(done["finishWebAuthnRegistration"]["kind"], "WEBAUTHN");
    done
}

/// Ask for login options (`email`, or none for whichever passkey the device
/// holds), on a session or none.
async fn login_options(
    app: &TestApp,
    token: Option<&str>,
    email: Option<&str>,
) -> RequestChallengeResponse {
    let (_, body) = app
        .graphql(
            token,
            "mutation($e: String) { startWebAuthnLogin(email: $e) }",
            json!({ "e": email }),
        )
        .await;
    serde_json::from_value(body["data"]["startWebAuthnLogin"].clone())
        .unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The device's answer to `options`, from `origin`.
fn sign(device: &mut SoftToken, origin: &str, options: RequestChallengeResponse) -> Value {
    let answer = device
        .do_authentication(Url::parse(origin).unwrap(), options)
        .unwrap();
    serde_json::to_value(&answer).unwrap()
}

async fn finish(app: &TestApp, token: Option<&str>, answer: &Value) -> Value {
    app.graphql(token, FINISH_LOGIN, json!({ "c": answer }))
        .await
        .1
}

async fn methods_of(app: &TestApp, token: &str) -> Value {
    let sessions = app
        .ok(token, "{ mySessions { current authMethods } }", json!({}))
        .await;
    sessions["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["authMethods"]
        .clone()
}

#[each_backend]
#[tokio::test]
async fn a_passkey_logs_in_without_a_password_and_completes_a_password_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Passkey Clinic").await;
    let nurse = app.user(org, "nurse@passkey.test", &["Provider"]).await;
    let first = app.login("nurse@passkey.test", PASSWORD).await;
    let (mut phone, mut key) = (device(), device());
    register(&app, &first, &mut phone, "Phone").await;
    register(&app, &first, &mut key, "Desk key").await;
    let mine = app
        .ok(&first, "{ myAuthenticators { kind name } }", json!({}))
        .await;
    assert_eq!(
        mine["myAuthenticators"],
        json!([{ "kind": "WEBAUTHN", "name": "Phone" }, { "kind": "WEBAUTHN", "name": "Desk key" }]),
        "{backend:?}"
    );

    // No password: the email, then the device.
    let options = login_options(&app, None, Some("nurse@passkey.test")).await;
    assert_eq!(options.public_key.allow_credentials.len(), 2);
    let body = finish(&app, None, &sign(&mut key, ORIGIN, options)).await;
    let token = body["data"]["finishWebAuthnLogin"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{backend:?}: {body}"))
        .to_owned();
    assert_eq!(methods_of(&app, &token).await, json!(["hwk"]));

    // A password login now waits for a second factor; the passkey gives it.
    let (_, body) = app
        .graphql(
            None,
            "mutation { login(email: \"nurse@passkey.test\", password: \"Correct horse 42\") { token mfaRequired mfaMethods } }",
            json!({}),
        )
        .await;
    let login = &body["data"]["login"];
    assert_eq!(login["mfaRequired"], true);
    assert_eq!(login["mfaMethods"], json!(["WEBAUTHN", "RECOVERY_CODE"]));
    let pending = login["token"].as_str().unwrap().to_owned();
    let options = login_options(&app, Some(&pending), None).await;
    let body = finish(&app, Some(&pending), &sign(&mut phone, ORIGIN, options)).await;
    let full = body["data"]["finishWebAuthnLogin"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert_ne!(full, pending);
    assert_eq!(methods_of(&app, &full).await, json!(["pwd", "hwk"]));

    // On a complete session the key verifies again and the token stays.
    let options = login_options(&app, Some(&full), None).await;
    let body = finish(&app, Some(&full), &sign(&mut key, ORIGIN, options)).await;
    assert_eq!(
        body["data"]["finishWebAuthnLogin"]["token"],
        full.as_str(),
        "{body}"
    );

    // A device that names its own user (a discoverable passkey): no email.
    let mut options = login_options(&app, None, None).await;
    assert!(options.public_key.allow_credentials.is_empty());
    // The soft token cannot search its own keys: name the one it holds,
    // then answer as a discoverable authenticator does, with the user
    // handle the passkey was made with.
    let held = login_options(&app, None, Some("nurse@passkey.test")).await;
    options.public_key.allow_credentials = held.public_key.allow_credentials;
    let mut answer = sign(&mut phone, ORIGIN, options);
    answer["response"]["userHandle"] = json!(base64_url(nurse.as_bytes()));
    let body = finish(&app, None, &answer).await;
    assert!(
        body["data"]["finishWebAuthnLogin"]["token"].is_string(),
        "{backend:?}: {body}"
    );
    // The same answer again is a replay.
    let body = finish(&app, None, &answer).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    let audit = app.audit_actions(org).await;
    assert!(audit.iter().any(|a| a == "mfa.passkey_registered"));
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[each_backend]
#[tokio::test]
async fn answers_from_another_origin_or_relying_party_or_a_cloned_key_are_refused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Phish Clinic").await;
    app.user(org, "nurse@phish.test", &["Provider"]).await;
    let first = app.login("nurse@phish.test", PASSWORD).await;
    let mut phone = device();
    register(&app, &first, &mut phone, "Phone").await;
    let email = Some("nurse@phish.test");

    // A look-alike site under the same domain relays the options.
    let options = login_options(&app, None, email).await;
    let body = finish(
        &app,
        None,
        &sign(&mut phone, "https://login.rollcall.test", options),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{backend:?}: {body}");

    // A relying party id other than the server's.
    let mut options = login_options(&app, None, email).await;
    options.public_key.rp_id = "test".to_owned();
    let body = finish(&app, None, &sign(&mut phone, ORIGIN, options)).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{backend:?}: {body}");

    // A copy of the key, taken now, signs after the original moved on.
    let options = login_options(&app, None, email).await;
    let body = finish(&app, None, &sign(&mut phone, ORIGIN, options)).await;
    assert!(
        body["data"]["finishWebAuthnLogin"]["token"].is_string(),
        "{body}"
    );
    let mut clone = SoftToken::from_cbor(&phone.to_cbor().unwrap()).unwrap();
    let options = login_options(&app, None, email).await;
    let body = finish(&app, None, &sign(&mut phone, ORIGIN, options)).await;
    assert!(
        body["data"]["finishWebAuthnLogin"]["token"].is_string(),
        "{body}"
    );
    let options = login_options(&app, None, email).await;
    let body = finish(&app, None, &sign(&mut clone, ORIGIN, options)).await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "{backend:?}: counter went back: {body}"
    );

    // An address without an account gets options like any other.
    let unknown = login_options(&app, None, Some("nobody@phish.test")).await;
    assert!(!unknown.public_key.allow_credentials.is_empty());
    let again = login_options(&app, None, Some("nobody@phish.test")).await;
    let ids = |o: &RequestChallengeResponse| {
        o.public_key
            .allow_credentials
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&unknown), ids(&again), "the same decoys each time");

    let audit = app.audit_actions(org).await;
    assert!(
        audit.iter().filter(|a| *a == "auth.passkey_failed").count() >= 3,
        "{audit:?}"
    );
}
