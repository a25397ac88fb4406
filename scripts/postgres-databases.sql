-- One database per store (compose.yaml runs this once, on the server's first start).
CREATE DATABASE journal;
CREATE DATABASE decisions;
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
CREATE DATABASE feast;
