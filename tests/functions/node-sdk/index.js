// The AWS SDK for JavaScript v3 as Lambda's Node.js runtimes ship it: its clients load and build
// their configuration from the function's environment (region, credentials chain).
const started = process.hrtime.bigint();
const { LambdaClient, ListFunctionsCommand } = require('@aws-sdk/client-lambda');
const { S3Client } = require('@aws-sdk/client-s3');
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient } = require('@aws-sdk/lib-dynamodb');
const requireMs = Number(process.hrtime.bigint() - started) / 1e6;

exports.handler = async () => {
  const lambda = new LambdaClient({});
  const s3 = new S3Client({});
  const docs = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  return {
    lambda: typeof ListFunctionsCommand,
    region: await lambda.config.region(),
    s3_region: await s3.config.region(),
    document_client: typeof docs.send,
    resolved_from: require.resolve('@aws-sdk/client-lambda'),
    require_ms: requireMs,
  };
};
