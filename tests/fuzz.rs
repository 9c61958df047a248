//! Every query and mutation of the schema, fed generated arguments: no 5xx, no
//! panic, every error with `extensions.code`.
//!
//! The fuzzer reads the schema the server serves (introspection), and for each
//! root field builds operations whose variables are generated from the
//! arguments' types: valid-looking values, boundary values, hostile strings,
//! wrong shapes, omitted optional fields and nulls. It runs as an admin, so that
//! resolvers are reached rather than stopped at the door, with a fixed seed
//! (`FUZZ_SEED` to vary it, `FUZZ_CASES` for cases per field).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::collections::HashMap;

use common::TestApp;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::{Map, Value, json};

const TYPE_REF: &str =
    "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// Fields that would end the fuzzer's own session.
const SKIPPED: &[&str] = &["logout", "changePassword"];

struct Schema {
    types: HashMap<String, Value>,
}

impl Schema {
    async fn load(app: &TestApp, token: &str) -> (Self, Vec<(&'static str, Value)>) {
        let query = format!(
            "{{ __schema {{
                queryType {{ fields {{ name args {{ name type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }} }}
                mutationType {{ fields {{ name args {{ name type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }} }}
                types {{ kind name enumValues {{ name }} inputFields {{ name type {{ {TYPE_REF} }} }} }}
            }} }}"
        );
        let data = app.ok(token, &query, json!({})).await;
        let schema = &data["__schema"];
        let types = schema["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
            .collect();
        let mut roots = Vec::new();
        for (operation, root) in [("query", "queryType"), ("mutation", "mutationType")] {
            for field in schema[root]["fields"].as_array().unwrap() {
                roots.push((operation, field.clone()));
            }
        }
        (Self { types }, roots)
    }

    /// A value for a type reference; `None` means "leave it out".
    fn value(&self, rng: &mut StdRng, ty: &Value, depth: usize) -> Value {
        match ty["kind"].as_str().unwrap() {
            "NON_NULL" => self.value(rng, &ty["ofType"], depth),
            "LIST" => {
                if rng.random_bool(0.1) {
                    return Value::Null;
                }
                let n = rng.random_range(0..=3);
                Value::Array(
                    (0..n)
                        .map(|_| self.value(rng, &ty["ofType"], depth + 1))
                        .collect(),
                )
            }
            _ => {
                if rng.random_bool(0.05) {
                    // A nullable or wrongly null value: the server must refuse it cleanly.
                    return Value::Null;
                }
                let name = ty["name"].as_str().unwrap();
                self.named(rng, name, depth)
            }
        }
    }

    fn named(&self, rng: &mut StdRng, name: &str, depth: usize) -> Value {
        let strings = [
            String::new(),
            " ".into(),
            "a".into(),
            "Ada Lovelace".into(),
            "ada@example.org".into(),
            "=HYPERLINK(\"http://evil\")".into(),
            "<script>alert(1)</script>".into(),
            "' OR 1=1 --".into(),
            "\u{0}\u{1b}[31m".into(),
            "Zoë 👩‍⚕️ مرحبا".into(),
            "x".repeat(10_000),
            "2026-02-30".into(),
            "../../etc/passwd".into(),
        ];
        match name {
            "ID" => {
                let ids = [
                    uuid::Uuid::now_v7().to_string(),
                    uuid::Uuid::nil().to_string(),
                    "not-an-id".into(),
                    String::new(),
                    "1".into(),
                ];
                json!(ids.choose(rng).unwrap())
            }
            "String" => json!(strings.choose(rng).unwrap()),
            "Int" => json!([0, -1, 1, 20, i32::MAX, i32::MIN].choose(rng).unwrap()),
            "Float" => json!([0.0, -1.5, 1e308].choose(rng).unwrap()),
            "Boolean" => json!(rng.random_bool(0.5)),
            "DateTime" => json!(
                [
                    "2026-11-30T15:00:00Z",
                    "1900-01-01T00:00:00Z",
                    "yesterday",
                    ""
                ]
                .choose(rng)
                .unwrap()
            ),
            "Date" => json!(
                ["2026-11-30", "2024-02-29", "2023-02-29", "30/11/2026"]
                    .choose(rng)
                    .unwrap()
            ),
            "JSON" => [
                json!({}),
                json!({ "view": "caseload" }),
                json!([1, 2]),
                json!("text"),
                json!({ "a": { "b": { "c": { "d": [null, true, 1.5] } } } }),
            ]
            .choose(rng)
            .unwrap()
            .clone(),
            "Upload" => Value::Null,
            _ => {
                let ty = &self.types[name];
                match ty["kind"].as_str().unwrap() {
                    "ENUM" => {
                        if rng.random_bool(0.1) {
                            json!("NOT_A_VALUE")
                        } else {
                            let values = ty["enumValues"].as_array().unwrap();
                            values.choose(rng).unwrap()["name"].clone()
                        }
                    }
                    "INPUT_OBJECT" if depth < 4 => {
                        let mut object = Map::new();
                        for field in ty["inputFields"].as_array().unwrap() {
                            let required = field["type"]["kind"] == "NON_NULL";
                            if required || rng.random_bool(0.6) {
                                object.insert(
                                    field["name"].as_str().unwrap().to_owned(),
                                    self.value(rng, &field["type"], depth + 1),
                                );
                            }
                        }
                        Value::Object(object)
                    }
                    _ => Value::Null,
                }
            }
        }
    }
}

/// The GraphQL spelling of a type reference, for variable definitions.
fn type_name(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", type_name(&ty["ofType"])),
        "LIST" => format!("[{}]", type_name(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap().to_owned(),
    }
}

/// Whether a return type needs a selection set.
fn is_composite(ty: &Value) -> bool {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" | "LIST" => is_composite(&ty["ofType"]),
        "OBJECT" | "INTERFACE" | "UNION" => true,
        _ => false,
    }
}

#[tokio::test]
async fn every_root_field_answers_generated_input_without_a_5xx_and_with_codes() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_124);
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let (_, token) = app.admin_in("Fuzz Clinic", "admin@fuzz.test").await;
        let (schema, roots) = Schema::load(&app, &token).await;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut sent = 0;
        for (operation, field) in &roots {
            let name = field["name"].as_str().unwrap();
            if SKIPPED.contains(&name) {
                continue;
            }
            let args = field["args"].as_array().unwrap();
            let selection = if is_composite(&field["type"]) {
                " { __typename }"
            } else {
                ""
            };
            let definitions: Vec<String> = args
                .iter()
                .map(|a| {
                    format!(
                        "${}: {}",
                        a["name"].as_str().unwrap(),
                        type_name(&a["type"])
                    )
                })
                .collect();
            let passed: Vec<String> = args
                .iter()
                .map(|a| format!("{0}: ${0}", a["name"].as_str().unwrap()))
                .collect();
            let query = if args.is_empty() {
                format!("{operation} {{ {name}{selection} }}")
            } else {
                format!(
                    "{operation}({}) {{ {name}({}){selection} }}",
                    definitions.join(", "),
                    passed.join(", ")
                )
            };
            for _ in 0..cases {
                let mut variables = Map::new();
                for arg in args {
                    let required = arg["type"]["kind"] == "NON_NULL";
                    if required || rng.random_bool(0.7) {
                        variables.insert(
                            arg["name"].as_str().unwrap().to_owned(),
                            schema.value(&mut rng, &arg["type"], 0),
                        );
                    }
                }
                let (status, body) = app
                    .graphql(Some(&token), &query, Value::Object(variables.clone()))
                    .await;
                sent += 1;
                assert!(
                    status < 500
                        || body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE",
                    "{backend:?} seed {seed}: {status} for {query} with {variables:?}: {body}"
                );
                for error in body["errors"].as_array().into_iter().flatten() {
                    assert!(
                        error["extensions"]["code"].is_string(),
                        "{backend:?} seed {seed}: an error without a code for {query} with {variables:?}: {error}"
                    );
                    assert_ne!(
                        error["extensions"]["code"], "INTERNAL",
                        "{backend:?} seed {seed}: {query} with {variables:?}: {error}"
                    );
                }
            }
        }
        assert!(sent > 100, "the schema has roots to fuzz: {sent}");
        // NUL cannot be stored in PostgreSQL text: refused at the door, by name.
        let (status, body) = app
            .graphql(
                None,
                "mutation($e: String!) { login(email: $e, password: \"x\") { token } }",
                json!({ "e": "a\u{0}@example.org" }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("NUL")
        );
        // Still serving, and the fuzzer's session is still good.
        let me = app.ok(&token, "{ me { email } }", json!({})).await;
        assert_eq!(me["me"]["email"], "admin@fuzz.test");
        app.stop().await;
    }
}
