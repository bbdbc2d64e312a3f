//! The checked-in `spec/asyncapi.json` is exactly what the types generate, its
//! examples are valid messages, and its operations cover every message.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tidewire_protocol::asyncapi;
use tidewire_protocol::schema;
use tidewire_protocol::{ClientMessage, ServerMessage};

const REGENERATE: &str = "cargo run -p tidewire-protocol --bin tidewire-schemas";

fn document() -> Value {
    asyncapi::generate()
}

/// A validator for a message's payload, resolving `$ref`s inside the document itself.
fn payload_validator(document: &Value, message: &Value) -> jsonschema::Validator {
    let reference = message["payload"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("payload of {} is not a $ref", message["name"]));
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": reference,
        "components": document["components"],
    });
    jsonschema::draft202012::new(&root)
        .unwrap_or_else(|err| panic!("payload schema {reference} does not compile: {err}"))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn ref_name(reference: &Value) -> &str {
    let reference = reference["$ref"].as_str().expect("a $ref");
    reference.rsplit('/').next().unwrap()
}

#[test]
fn checked_in_asyncapi_matches_the_types() {
    let path = asyncapi::default_path();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {}: {err}; generate it with `{REGENERATE}`",
            path.display()
        )
    });
    assert!(
        on_disk == asyncapi::to_json(),
        "spec/asyncapi.json drifted from the message types; regenerate with `{REGENERATE}`"
    );
}

#[test]
fn every_example_is_valid_by_its_payload_schema_and_the_json_schema_file() {
    let document = document();
    let files: Vec<schema::SchemaFile> = schema::generate();
    let file_schema = |direction: &str, tag: &str| -> Value {
        let path = format!("{direction}/{tag}.schema.json");
        let file = files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path}"));
        serde_json::from_str(&file.contents).unwrap()
    };
    let mut checked = 0;
    for (name, message) in document["components"]["messages"].as_object().unwrap() {
        let tag = message["name"].as_str().unwrap();
        let examples = message["examples"].as_array().unwrap();
        assert!(!examples.is_empty(), "{name} has no example");
        let validator = payload_validator(&document, message);
        for example in examples {
            let payload = &example["payload"];
            assert_eq!(payload["type"], tag, "{name} example {}", example["name"]);
            let problems = errors(&validator, payload);
            assert!(
                problems.is_empty(),
                "{name} example {}: {problems:#?}",
                example["name"]
            );

            // The same payload against the checked-in per-message JSON Schema, and
            // through the Rust type, where it must round-trip unchanged.
            let direction = if ClientMessage::TAGS.contains(&tag)
                && serde_json::from_value::<ClientMessage>(payload.clone()).is_ok()
            {
                let parsed: ClientMessage = serde_json::from_value(payload.clone()).unwrap();
                assert_eq!(&serde_json::to_value(parsed).unwrap(), payload);
                "client"
            } else {
                let parsed: ServerMessage = serde_json::from_value(payload.clone())
                    .unwrap_or_else(|err| panic!("{name} example {}: {err}", example["name"]));
                assert_eq!(&serde_json::to_value(parsed).unwrap(), payload);
                "server"
            };
            let file_validator =
                jsonschema::draft202012::new(&file_schema(direction, tag)).unwrap();
            let problems = errors(&file_validator, payload);
            assert!(
                problems.is_empty(),
                "{direction}/{tag} rejects {payload}: {problems:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= ClientMessage::TAGS.len() + ServerMessage::TAGS.len());
}

#[test]
fn the_example_check_rejects_an_invalid_payload() {
    let document = document();
    let watch = &document["components"]["messages"]["Watch"];
    let validator = payload_validator(&document, watch);
    let mut payload = watch["examples"][0]["payload"].clone();
    assert!(errors(&validator, &payload).is_empty());
    payload["database"] = json!("app.users");
    assert!(
        !errors(&validator, &payload).is_empty(),
        "a dotted database name must fail"
    );
    payload["database"] = json!("app");
    payload.as_object_mut().unwrap().remove("id");
    assert!(
        !errors(&validator, &payload).is_empty(),
        "a missing id must fail"
    );
}

#[test]
fn every_message_of_both_directions_is_in_the_channel() {
    let document = document();
    let channel = &document["channels"][asyncapi::CHANNEL];
    let in_channel: BTreeSet<&str> = channel["messages"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let components = document["components"]["messages"].as_object().unwrap();
    let in_components: BTreeSet<&str> = components.keys().map(String::as_str).collect();
    assert_eq!(in_channel, in_components);
    let mut client_tags: Vec<&str> = Vec::new();
    let mut server_tags: Vec<&str> = Vec::new();
    for message in components.values() {
        let tag = message["name"].as_str().unwrap();
        let example = &message["examples"][0]["payload"];
        if serde_json::from_value::<ClientMessage>(example.clone()).is_ok() {
            client_tags.push(tag);
        } else {
            server_tags.push(tag);
        }
    }
    client_tags.sort_unstable();
    server_tags.sort_unstable();
    let mut expected_client = ClientMessage::TAGS.to_vec();
    let mut expected_server = ServerMessage::TAGS.to_vec();
    expected_client.sort_unstable();
    expected_server.sort_unstable();
    assert_eq!(client_tags, expected_client);
    assert_eq!(server_tags, expected_server);
}

#[test]
fn operations_receive_every_request_and_send_every_server_message() {
    let document = document();
    let operations = document["operations"].as_object().unwrap();
    let messages = &document["components"]["messages"];
    let tag_of = |reference: &Value| {
        messages[ref_name(reference)]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let mut sent: BTreeSet<String> = BTreeSet::new();
    for tag in ClientMessage::TAGS {
        let operation = &operations[&format!("receive_{tag}")];
        assert_eq!(operation["action"], "receive", "{tag}");
        let received: Vec<String> = operation["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(tag_of)
            .collect();
        assert_eq!(received, vec![tag.to_string()]);
        let replies: Vec<String> = operation["reply"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(tag_of)
            .collect();
        let mut expected: Vec<String> = ClientMessage::REPLIES
            .iter()
            .find(|(request, _)| request == tag)
            .unwrap()
            .1
            .iter()
            .map(|reply| reply.to_string())
            .collect();
        expected.push("error".to_string());
        assert_eq!(replies, expected, "{tag}");
        sent.extend(replies);
    }
    for (key, operation) in operations {
        if operation["action"] == "send" {
            assert!(operation.get("reply").is_none(), "{key}");
            sent.extend(operation["messages"].as_array().unwrap().iter().map(tag_of));
        } else {
            assert_eq!(operation["action"], "receive", "{key}");
        }
    }
    let all_server: BTreeSet<String> = ServerMessage::TAGS.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        sent, all_server,
        "every server message is a reply or a push"
    );
}

#[test]
fn replies_carry_the_request_id_and_pushes_carry_none() {
    let replies: BTreeSet<&str> = ClientMessage::REPLIES
        .iter()
        .flat_map(|(_, replies)| replies.iter().copied())
        .collect();
    let pushed: BTreeSet<&str> = document()["operations"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|key| key.strip_prefix("send_"))
        .map(|tag| {
            ServerMessage::TAGS
                .iter()
                .find(|t| **t == tag)
                .copied()
                .unwrap()
        })
        .collect();
    for example in asyncapi::server_examples() {
        let tag = example.message.tag();
        if example.message.reply_to().is_some() {
            assert!(
                replies.contains(tag) || tag == "error",
                "{tag} carries an id but answers no request"
            );
        } else {
            assert!(
                pushed.contains(tag),
                "{tag} is sent without a request but has no send operation"
            );
        }
    }
    assert!(pushed.contains("error"), "an error without id is a push");
    assert!(pushed.contains("change") && pushed.contains("welcome"));
    assert!(!pushed.contains("watching"));
}

#[test]
fn request_examples_are_answered_by_their_reply_type() {
    for (request, reply) in ClientMessage::REPLIES
        .iter()
        .flat_map(|(request, replies)| replies.iter().map(move |reply| (request, reply)))
    {
        assert!(ClientMessage::TAGS.contains(request), "{request}");
        assert!(ServerMessage::TAGS.contains(reply), "{reply}");
        let examples: Vec<_> = asyncapi::server_examples()
            .into_iter()
            .filter(|e| e.message.tag() == *reply)
            .collect();
        assert!(!examples.is_empty(), "{reply}");
        for example in examples {
            assert!(
                example.message.reply_to().is_some(),
                "{reply} example {} has no id",
                example.name
            );
        }
    }
    assert_eq!(ClientMessage::REPLIES.len(), ClientMessage::TAGS.len());
}

#[test]
fn the_channel_names_the_subprotocol() {
    let document = document();
    let binding = &document["channels"][asyncapi::CHANNEL]["bindings"]["ws"];
    assert_eq!(binding["method"], "GET");
    assert_eq!(
        binding["headers"]["properties"]["Sec-WebSocket-Protocol"]["examples"],
        json!([tidewire_protocol::SUBPROTOCOL])
    );
    assert!(binding["query"]["properties"]["token"].is_object());
    assert_eq!(document["asyncapi"], asyncapi::ASYNCAPI_VERSION);
}

#[test]
fn payload_references_resolve_in_the_document() {
    let document = document();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let mut pending = vec![&document];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    assert!(
                        !reference.contains("$defs"),
                        "{reference} points into a JSON Schema file"
                    );
                    if let Some(name) = reference.strip_prefix("#/components/schemas/") {
                        assert!(schemas.contains_key(name), "dangling {reference}");
                    }
                }
                pending.extend(object.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
}
