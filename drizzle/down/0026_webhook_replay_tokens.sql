DROP TABLE "webhook_replay_tokens";
