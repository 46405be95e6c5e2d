import { execFileSync } from "node:child_process";
import { createSign, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * SNS messages for tests, signed as SNS signs them with a key pair and self-signed certificate made here (the
 * `openssl` CLI: node:crypto makes keys but not certificates), so nothing is fetched. The string to sign is
 * built here from AWS's description, not by the module under test.
 */

export const topicArn = "arn:aws:sns:us-east-1:123456789012:ses-events";
export const certificateUrl =
  "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";

export interface SnsKeys {
  privateKeyPem: string;
  certificatePem: string;
}

/** A fresh RSA key pair and a self-signed certificate of its public key. */
export function snsKeys(): SnsKeys {
  const dir = mkdtempSync(join(tmpdir(), "herald-sns-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-subj",
        "/CN=sns.amazonaws.com",
        "-days",
        "2",
      ],
      { stdio: "ignore" },
    );
    return {
      privateKeyPem: readFileSync(join(dir, "key.pem"), "utf8"),
      certificatePem: readFileSync(join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export type Envelope = Record<string, string>;

/** The fields SNS signs, by message type, in order (AWS: sns-verify-signature-of-message). */
const signedFields = (type: string) =>
  type === "Notification"
    ? ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];

export function canonicalString(envelope: Envelope): string {
  return signedFields(envelope.Type!)
    .filter((field) => typeof envelope[field] === "string")
    .map((field) => `${field}\n${envelope[field]}\n`)
    .join("");
}

/** The envelope signed with `keys` (SignatureVersion 1: SHA1withRSA; 2: SHA256withRSA). */
export function signed(envelope: Envelope, keys: SnsKeys, version: "1" | "2" = "2"): Envelope {
  const withVersion = { ...envelope, SignatureVersion: version };
  const signer = createSign(version === "1" ? "RSA-SHA1" : "RSA-SHA256");
  signer.update(canonicalString(withVersion), "utf8");
  return {
    ...withVersion,
    Signature: signer.sign(keys.privateKeyPem, "base64"),
    SigningCertURL: envelope.SigningCertURL ?? certificateUrl,
  };
}

/** A Notification carrying `message` (an SES notification, as JSON text), unsigned. */
export function notification(
  message: object | string,
  fields: Partial<Envelope> = {},
  at = new Date(),
): Envelope {
  return {
    Type: "Notification",
    MessageId: randomUUID(),
    TopicArn: topicArn,
    Message: typeof message === "string" ? message : JSON.stringify(message),
    Timestamp: at.toISOString(),
    SigningCertURL: certificateUrl,
    UnsubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${topicArn}:1`,
    ...fields,
  };
}

/** A SubscriptionConfirmation of `topic`, unsigned. */
export function subscriptionConfirmation(topic = topicArn, at = new Date()): Envelope {
  const token = "2336412f37fb687f5d51e6e2425e90cc3bb9f6e40c2a8d8e1e5b6a0b8fe4cd0f";
  return {
    Type: "SubscriptionConfirmation",
    MessageId: randomUUID(),
    Token: token,
    TopicArn: topic,
    Message: `You have chosen to subscribe to the topic ${topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`,
    SubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${topic}&Token=${token}`,
    Timestamp: at.toISOString(),
    SigningCertURL: certificateUrl,
  };
}

/** An SES message of `eventType` about `recipients`, as event publishing sends it. */
export function sesEvent(
  eventType: string,
  messageId: string,
  recipients: string[],
  part: Record<string, unknown> = {},
  at = new Date(),
): Record<string, unknown> {
  return {
    eventType,
    mail: {
      timestamp: new Date(at.getTime() - 1000).toISOString(),
      messageId,
      source: "sender@example.com",
      sendingAccountId: "123456789012",
      destination: recipients,
      headersTruncated: false,
      tags: { "ses:configuration-set": ["ConfigSet"] },
    },
    ...part,
  };
}
