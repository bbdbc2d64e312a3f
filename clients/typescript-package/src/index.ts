// The Tidewire v1 message types and the two helpers a client needs around a WebSocket:
// `encode` for the requests it sends, `decode` for the frames it receives.
//
// The types in ./generated/ are written at build time by json-schema-to-typescript from
// the package variant of spec/schema (clients/package_schemas.py): requests are closed
// (an unknown member is a compile error), server messages are open (TW-CORE-6).

import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";

import type { ClientMessage } from "./generated/client-message";
import type { ServerMessage } from "./generated/server-message";
import serverMessageSchema from "./generated/server-message.schema.json";

export type * from "./generated/client-message";
export type * from "./generated/server-message";
// Both directions define these; the explicit exports settle which one the package name means.
// The string types are the same in both, and so are `Position` and `MemberMetadata`, which a
// client sends back as it received them. `EditOp` is the request's (closed) one: the ops of a
// `document_edit` push are typed by that message (`DocumentEdit["ops"]`).
export type {
  CollectionName,
  DisplayName,
  IdempotencyKey,
  MemberMetadata,
  Name,
  Position,
  RequestId,
  ResumeToken,
  Timestamp,
} from "./generated/server-message";
export type { EditOp } from "./generated/client-message";
export { SUBPROTOCOL } from "./generated/protocol";

/** The JSON text of a request, ready to send as one text frame. */
export function encode(message: ClientMessage): string {
  return JSON.stringify(message);
}

/** One reason a frame is not a valid server message. */
export interface ValidationIssue {
  /** JSON pointer to the offending member; empty for the message itself. */
  path: string;
  message: string;
}

/** Thrown by `decode` for a frame that is not a valid Tidewire server message. */
export class InvalidServerMessage extends Error {
  constructor(
    message: string,
    readonly issues: ValidationIssue[],
  ) {
    super(message);
    this.name = "InvalidServerMessage";
  }
}

const ajv = new Ajv2020({ allErrors: true });
addFormats(ajv, ["date-time"]);
// The OpenAPI-style `discriminator` of the package schemas is for code generators; the
// validators below dispatch on `type` themselves.
ajv.addKeyword("discriminator");
const SCHEMA_ID = "urn:tidewire:schema:server-message";
ajv.addSchema(serverMessageSchema, SCHEMA_ID);

const definitionByTag = new Map<string, string>(
  Object.entries(serverMessageSchema.discriminator.mapping),
);
const validators = new Map<string, ValidateFunction>();

/** The validator of the message tagged `tag`, or undefined for a tag the protocol lacks. */
function validatorFor(tag: string): ValidateFunction | undefined {
  let validate = validators.get(tag);
  const definition = definitionByTag.get(tag);
  if (validate === undefined && definition !== undefined) {
    validate = ajv.getSchema(`${SCHEMA_ID}${definition}`);
    if (validate === undefined) {
      throw new Error(`tidewire-protocol: no schema at ${definition} for \`${tag}\``);
    }
    validators.set(tag, validate);
  }
  return validate;
}

function issuesOf(errors: ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).map((error) => ({
    path: error.instancePath,
    message: error.message ?? error.keyword,
  }));
}

/** The issues that make `value` not a valid server message; empty when it is one. */
export function checkServerMessage(value: unknown): ValidationIssue[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [{ path: "", message: "must be a JSON object" }];
  }
  const tag = (value as { type?: unknown }).type;
  if (typeof tag !== "string") {
    return [{ path: "/type", message: "must be a string" }];
  }
  const validate = validatorFor(tag);
  if (validate === undefined) {
    return [{ path: "/type", message: `\`${tag}\` is not a server message type of this version` }];
  }
  // Only the schema of the message `type` names: one set of issues, not one per member.
  return validate(value) ? [] : issuesOf(validate.errors);
}

/** Whether `value` is a valid server message. */
export function isServerMessage(value: unknown): value is ServerMessage {
  return checkServerMessage(value).length === 0;
}

/**
 * Parses and validates a received text frame. Members the schema does not define are kept
 * and ignored (TW-CORE-6). Throws `InvalidServerMessage` for a frame that is not JSON or not
 * valid by the schema of its `type`.
 */
export function decode(frame: string): ServerMessage {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidServerMessage(`frame is not JSON: ${reason}`, [{ path: "", message: reason }]);
  }
  const issues = checkServerMessage(value);
  if (issues.length > 0) {
    const tag = (value as { type?: unknown } | null)?.type;
    const what = typeof tag === "string" ? `\`${tag}\` message` : "server message";
    const summary = issues.map((issue) => `${issue.path || "/"} ${issue.message}`).join("; ");
    throw new InvalidServerMessage(`invalid ${what}: ${summary}`, issues);
  }
  return value as ServerMessage;
}
