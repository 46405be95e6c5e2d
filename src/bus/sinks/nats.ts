import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { publicEvent } from "../../events/columns.js";
import { type Delivery, messageId } from "../delivery.js";

/**
 * Publishes to NATS JetStream with `Nats-Msg-Id` = the message id, so the stream drops a redelivery inside
 * its duplicate window. The connection opens on first use and is drained on close. The subject must belong
 * to a stream (Herald does not create streams: their retention is the operator's choice).
 */
export class NatsPublisher {
  private connection: Promise<{ nc: NatsConnection; js: JetStreamClient }> | undefined;

  constructor(private readonly servers: string) {}

  private connected() {
    this.connection ??= connect({ servers: this.servers, name: "herald" }).then(
      (nc) => ({ nc, js: jetstream(nc) }),
      (error: unknown) => {
        this.connection = undefined;
        throw error;
      },
    );
    return this.connection;
  }

  /** Publish; resolves with whether JetStream recognised it as a duplicate. */
  async publish(subject: string, delivery: Delivery): Promise<{ duplicate: boolean }> {
    const { js } = await this.connected();
    const body = JSON.stringify({
      type: delivery.event.event_type,
      timestamp: delivery.event.timestamp,
      data: publicEvent(delivery.event),
    });
    const ack = await js.publish(subject, body, { msgID: messageId(delivery), timeout: 10_000 });
    return { duplicate: ack.duplicate };
  }

  async close(): Promise<void> {
    const current = this.connection;
    this.connection = undefined;
    if (current) await (await current.catch(() => undefined))?.nc.drain();
  }
}
