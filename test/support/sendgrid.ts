import { generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";

/** A fresh P-256 key pair, the public half as SendGrid shows it (base64 DER SubjectPublicKeyInfo). */
export function sendgridKeys() {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const publicKeyBase64 = publicKey.export({ format: "der", type: "spki" }).toString("base64");
  return {
    publicKeyBase64,
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    /** Headers SendGrid would send with `body`. */
    sign(body: Buffer | string, timestamp = String(Math.floor(Date.now() / 1000))) {
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
      const signature = sign("sha256", Buffer.concat([Buffer.from(timestamp), bytes]), privateKey).toString(
        "base64",
      );
      return {
        "x-twilio-email-event-webhook-signature": signature,
        "x-twilio-email-event-webhook-timestamp": timestamp,
      };
    },
  };
}

/** The shared sample delivery, with message id placeholders replaced. */
export function sampleBatch(messageIds: Record<string, string> = {}): Record<string, unknown>[] {
  let text = readFileSync(new URL("../fixtures/sendgrid/basic-batch.json", import.meta.url), "utf8");
  for (const [placeholder, id] of Object.entries(messageIds)) text = text.replaceAll(placeholder, id);
  return JSON.parse(text) as Record<string, unknown>[];
}
