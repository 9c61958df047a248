//! What the server tells a SCIM client about itself (RFC 7644 §4):
//! `ServiceProviderConfig`, `ResourceTypes` and `Schemas`. The schemas list
//! exactly the attributes Rollcall keeps; a client that fills every one
//! of them gets each back as it sent it.

use serde_json::{Value, json};

use super::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, MAX_COUNT, USER_SCHEMA};

const CONFIG_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [CONFIG_SCHEMA],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_COUNT },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "API client token",
            "description": "An API client's token (createApiClient), sent as Authorization: Bearer.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A staff user of the organisation.",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{ "schema": ENTERPRISE_SCHEMA, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A role of the organisation; its members hold it.",
            "schema": GROUP_SCHEMA,
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

/// One attribute's definition.
struct Attr {
    name: &'static str,
    kind: &'static str,
    multi: bool,
    required: bool,
    mutability: &'static str,
    uniqueness: &'static str,
    subs: Vec<Attr>,
    reference_types: &'static [&'static str],
    canonical: &'static [&'static str],
}

impl Attr {
    fn new(name: &'static str, kind: &'static str) -> Self {
        Self {
            name,
            kind,
            multi: false,
            required: false,
            mutability: "readWrite",
            uniqueness: "none",
            subs: Vec::new(),
            reference_types: &[],
            canonical: &[],
        }
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    fn mutability(mut self, mutability: &'static str) -> Self {
        self.mutability = mutability;
        self
    }
    fn unique(mut self) -> Self {
        self.uniqueness = "server";
        self
    }
    fn subs(mut self, subs: Vec<Attr>) -> Self {
        self.subs = subs;
        self
    }
    fn references(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }
    fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical = values;
        self
    }

    fn to_json(&self) -> Value {
        let mut attr = json!({
            "name": self.name,
            "type": self.kind,
            "multiValued": self.multi,
            "required": self.required,
            "caseExact": false,
            "mutability": self.mutability,
            "returned": "default",
            "uniqueness": self.uniqueness,
            "description": "",
        });
        if !self.subs.is_empty() {
            attr["subAttributes"] = Value::Array(self.subs.iter().map(Attr::to_json).collect());
        }
        if !self.reference_types.is_empty() {
            attr["referenceTypes"] = json!(self.reference_types);
        }
        if !self.canonical.is_empty() {
            attr["canonicalValues"] = json!(self.canonical);
        }
        attr
    }
}

fn schema(base: &str, id: &str, name: &str, description: &str, attrs: &[Attr]) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(Attr::to_json).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
    })
}

pub fn schemas(base: &str) -> Vec<Value> {
    let user = [
        Attr::new("userName", "string").required().unique(),
        Attr::new("name", "complex").required().subs(vec![
            Attr::new("givenName", "string").required(),
            Attr::new("familyName", "string").required(),
        ]),
        Attr::new("displayName", "string").mutability("readOnly"),
        Attr::new("title", "string"),
        Attr::new("active", "boolean").required(),
        Attr::new("emails", "complex").multi().required().subs(vec![
            Attr::new("value", "string").required(),
            // Rollcall keeps one address: `primary` is read (to pick the
            // address among several sent) and never shown, since the one
            // address is the primary one.
            Attr::new("type", "string").canonical(&["work"]),
        ]),
        Attr::new("groups", "complex")
            .multi()
            .mutability("readOnly")
            .subs(vec![
                Attr::new("value", "string").mutability("readOnly"),
                Attr::new("$ref", "reference")
                    .mutability("readOnly")
                    .references(&["Group"]),
                Attr::new("display", "string").mutability("readOnly"),
            ]),
    ];
    let enterprise = [
        Attr::new("employeeNumber", "string"),
        Attr::new("department", "string"),
    ];
    let group = [
        Attr::new("displayName", "string").required().unique(),
        Attr::new("members", "complex").multi().subs(vec![
            Attr::new("value", "string").mutability("immutable"),
            Attr::new("$ref", "reference")
                .mutability("immutable")
                .references(&["User"]),
        ]),
    ];
    vec![
        schema(base, USER_SCHEMA, "User", "A staff user.", &user),
        schema(
            base,
            ENTERPRISE_SCHEMA,
            "EnterpriseUser",
            "What HR systems know of a staff user.",
            &enterprise,
        ),
        schema(base, GROUP_SCHEMA, "Group", "A role.", &group),
    ]
}
