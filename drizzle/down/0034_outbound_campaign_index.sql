DROP INDEX "outbound_messages_campaign_idx";
