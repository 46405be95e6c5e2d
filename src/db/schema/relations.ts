import { relations } from "drizzle-orm";
import { deadLetters, outbox, subscriptions } from "./bus.js";
import {
  campaignPlanVersions,
  campaignTransitions,
  contactCampaigns,
  scheduledActions,
} from "./campaigns.js";
import { conversations, inboundMessages } from "./conversations.js";
import { messageEvents, outboundMessages, webhookDeliveries } from "./messages.js";
import { apiKeys, tenants, webhookSources } from "./tenancy.js";

export const tenantsRelations = relations(tenants, ({ many }) => ({
  apiKeys: many(apiKeys),
  webhookSources: many(webhookSources),
}));

export const apiKeysRelations = relations(apiKeys, ({ one }) => ({
  tenant: one(tenants, { fields: [apiKeys.tenantId], references: [tenants.id] }),
}));

export const webhookSourcesRelations = relations(webhookSources, ({ one, many }) => ({
  tenant: one(tenants, { fields: [webhookSources.tenantId], references: [tenants.id] }),
  deliveries: many(webhookDeliveries),
}));

export const webhookDeliveriesRelations = relations(webhookDeliveries, ({ one }) => ({
  source: one(webhookSources, { fields: [webhookDeliveries.sourceId], references: [webhookSources.id] }),
}));

export const contactCampaignsRelations = relations(contactCampaigns, ({ many }) => ({
  planVersions: many(campaignPlanVersions),
  transitions: many(campaignTransitions),
  scheduledActions: many(scheduledActions),
  messages: many(outboundMessages),
}));

export const campaignPlanVersionsRelations = relations(campaignPlanVersions, ({ one }) => ({
  campaign: one(contactCampaigns, {
    fields: [campaignPlanVersions.campaignId],
    references: [contactCampaigns.id],
  }),
}));

export const campaignTransitionsRelations = relations(campaignTransitions, ({ one }) => ({
  campaign: one(contactCampaigns, {
    fields: [campaignTransitions.campaignId],
    references: [contactCampaigns.id],
  }),
}));

export const scheduledActionsRelations = relations(scheduledActions, ({ one }) => ({
  campaign: one(contactCampaigns, {
    fields: [scheduledActions.campaignId],
    references: [contactCampaigns.id],
  }),
}));

export const outboundMessagesRelations = relations(outboundMessages, ({ one, many }) => ({
  campaign: one(contactCampaigns, {
    fields: [outboundMessages.campaignId],
    references: [contactCampaigns.id],
  }),
  events: many(messageEvents),
}));

export const messageEventsRelations = relations(messageEvents, ({ one }) => ({
  message: one(outboundMessages, {
    fields: [messageEvents.outboundMessageId],
    references: [outboundMessages.id],
  }),
}));

export const conversationsRelations = relations(conversations, ({ many }) => ({
  inbound: many(inboundMessages),
}));

export const inboundMessagesRelations = relations(inboundMessages, ({ one }) => ({
  conversation: one(conversations, {
    fields: [inboundMessages.conversationId],
    references: [conversations.id],
  }),
}));

export const subscriptionsRelations = relations(subscriptions, ({ many }) => ({
  outbox: many(outbox),
  deadLetters: many(deadLetters),
}));

export const outboxRelations = relations(outbox, ({ one }) => ({
  subscription: one(subscriptions, { fields: [outbox.subscriptionId], references: [subscriptions.id] }),
}));

export const deadLettersRelations = relations(deadLetters, ({ one }) => ({
  subscription: one(subscriptions, { fields: [deadLetters.subscriptionId], references: [subscriptions.id] }),
}));
