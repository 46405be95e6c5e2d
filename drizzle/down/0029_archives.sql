DROP TABLE "archives";
