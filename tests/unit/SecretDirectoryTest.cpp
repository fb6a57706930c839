// The local secrets provider (DESIGN 3.3) over a real directory: which file a valueFrom
// names, and that no message ever carries a value.
#include <catch2/catch.hpp>

#include "agent/SecretDirectory.h"
#include "support/TempDir.h"

using namespace daemonlet::agent;
using daemonlet::test::TempDir;

TEST_CASE("secrets: the last : or / part of valueFrom names the file, a Secrets Manager ARN may pick a JSON key") {
  auto ref = [](const char* valueFrom) { return parseSecretReference(valueFrom); };
  // Bare SSM parameter names, as in the corpus (gokabot).
  CHECK(ref("gokabot.TOKEN")->file == "gokabot.TOKEN");
  CHECK(ref("/myapp/prod/db_password")->file == "db_password");
  CHECK_FALSE(ref("/myapp/prod/db_password")->jsonKey);
  // SSM parameter ARN.
  CHECK(ref("arn:aws:ssm:eu-west-1:123456789012:parameter/nr/license")->file == "license");
  // Secrets Manager ARNs: plain, with a JSON key, with key, stage and version.
  CHECK(ref("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf")->file == "db-AbCdEf");
  CHECK_FALSE(ref("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf")->jsonKey);
  auto keyed = ref("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:password::");
  CHECK(keyed->file == "db-AbCdEf");
  CHECK(keyed->jsonKey == "password");
  CHECK(ref("arn:aws:secretsmanager:eu-west-1:1:secret:db:user:AWSCURRENT:")->jsonKey == "user");
  CHECK_FALSE(ref("arn:aws:secretsmanager:eu-west-1:1:secret:db:::")->jsonKey);
  // Nothing that could leave the directory.
  CHECK_FALSE(ref("/app/.."));
  CHECK_FALSE(ref("arn:aws:secretsmanager:r:1:secret:..:k::"));
  CHECK_FALSE(ref("/app/"));
}

TEST_CASE("secrets: values come from files, a missing one is ECS's ResourceInitializationError, without the value") {
  TempDir dir;
  dir.write("db_password", "s3cr3t-canary-1\n");
  dir.write("db-AbCdEf", R"({"username":"app","password":"s3cr3t-canary-2","port":5432})");
  dir.write("not-json", "s3cr3t-canary-3 is not JSON");
  SecretDirectory secrets(dir.path);

  CHECK(secrets.resolve("DB_PASSWORD", "/prod/db_password").value() == "s3cr3t-canary-1");  // one newline dropped
  CHECK(secrets.resolve("DB", "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf:password::").value() == "s3cr3t-canary-2");
  CHECK(secrets.resolve("PORT", "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf:port::").value() == "5432");
  CHECK(secrets.resolve("ALL", "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf").value().find("s3cr3t-canary-2") != std::string::npos);

  auto missing = secrets.resolve("API_KEY", "arn:aws:ssm:eu-west-1:1:parameter/app/api_key");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.rfind("ResourceInitializationError: secret API_KEY not found", 0) == 0);
  CHECK(missing.error().message.find((dir.path / "api_key").string()) != std::string::npos);

  auto noKey = secrets.resolve("DB_HOST", "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf:host::");
  REQUIRE_FALSE(noKey.ok());
  CHECK(noKey.error().message.rfind("ResourceInitializationError: secret DB_HOST not found", 0) == 0);
  CHECK(noKey.error().message.find("no key host") != std::string::npos);
  CHECK(noKey.error().message.find("s3cr3t") == std::string::npos);

  // The JSON parser's own message would quote the file: it must not reach the error.
  auto broken = secrets.resolve("X", "arn:aws:secretsmanager:eu-west-1:1:secret:not-json:k::");
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().message.find("not a JSON object") != std::string::npos);
  CHECK(broken.error().message.find("s3cr3t") == std::string::npos);
}
