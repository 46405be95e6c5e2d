ALTER TABLE webhook_deliveries ALTER COLUMN body SET COMPRESSION default;
