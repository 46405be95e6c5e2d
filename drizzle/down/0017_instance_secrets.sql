DROP TABLE "instance_secrets";
