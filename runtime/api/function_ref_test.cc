// Function names, ARNs and qualifiers as requests give them.
#include "runtime/api/function_ref.h"

#include <gtest/gtest.h>

namespace forklet::api {
namespace {

TEST(FunctionRefTest, NamesAndArns) {
  auto plain = ParseFunctionRef("f");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->name, "f");
  EXPECT_EQ(plain->qualifier, "");
  EXPECT_FALSE(plain->foreign);

  auto arn = ParseFunctionRef("arn:aws:lambda:us-east-1:000000000000:function:f");
  ASSERT_TRUE(arn);
  EXPECT_EQ(arn->name, "f");
  EXPECT_EQ(arn->qualifier, "");
  EXPECT_FALSE(arn->foreign);

  auto versioned = ParseFunctionRef("arn:aws:lambda:us-east-1:000000000000:function:f:7");
  ASSERT_TRUE(versioned);
  EXPECT_EQ(versioned->name, "f");
  EXPECT_EQ(versioned->qualifier, "7");
  EXPECT_EQ(versioned->shown, "arn:aws:lambda:us-east-1:000000000000:function:f:7");

  auto partial = ParseFunctionRef("000000000000:function:f:$LATEST");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->name, "f");
  EXPECT_EQ(partial->qualifier, "$LATEST");

  auto short_form = ParseFunctionRef("f:prod");
  ASSERT_TRUE(short_form);
  EXPECT_EQ(short_form->name, "f");
  EXPECT_EQ(short_form->qualifier, "prod");
}

TEST(FunctionRefTest, AnotherAccountIsNotATenantsButTheOperatorReachesIt) {
  // A tenant (the default account here) never names another account's function.
  auto other = ParseFunctionRef("arn:aws:lambda:us-east-1:123456789012:function:f", "", "000000000000");
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->foreign);
  EXPECT_EQ(other->key, "");
  EXPECT_EQ(other->shown, "arn:aws:lambda:us-east-1:123456789012:function:f");
  auto partial = ParseFunctionRef("123456789012:function:f", "", "000000000000");
  ASSERT_TRUE(partial);
  EXPECT_TRUE(partial->foreign);
  // Its bare names are its own account's.
  auto mine = ParseFunctionRef("f", "", "123456789012");
  ASSERT_TRUE(mine);
  EXPECT_FALSE(mine->foreign);
  EXPECT_EQ(mine->key, "123456789012.f");
  EXPECT_EQ(mine->shown, "arn:aws:lambda:us-east-1:123456789012:function:f");
  // A name that smuggles an account in is no name at all.
  auto smuggled = ParseFunctionRef("123456789012.f", "", "000000000000");
  ASSERT_TRUE(smuggled);
  EXPECT_TRUE(smuggled->foreign);
  EXPECT_TRUE(ParseFunctionRef("123456789012.f")->foreign);
  EXPECT_TRUE(ParseFunctionRef("arn:aws:lambda:us-east-1:12345:function:f")->foreign);

  // The operator (no caller account): bare names are the default account's, ARNs reach any.
  auto op = ParseFunctionRef("arn:aws:lambda:us-east-1:123456789012:function:f");
  ASSERT_TRUE(op);
  EXPECT_FALSE(op->foreign);
  EXPECT_EQ(op->key, "123456789012.f");
  EXPECT_EQ(ParseFunctionRef("f")->key, "f");
}

TEST(FunctionRefTest, QueryQualifier) {
  auto q = ParseFunctionRef("f", "1");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->qualifier, "1");
  EXPECT_EQ(q->shown, "arn:aws:lambda:us-east-1:000000000000:function:f:1");
  auto same = ParseFunctionRef("f:1", "1");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->qualifier, "1");
  auto differ = ParseFunctionRef("f:1", "2");
  ASSERT_FALSE(differ);
  EXPECT_EQ(differ.error().op, "InvalidParameterValueException");
}

TEST(FunctionRefTest, TooManyPartsMatchNothing) {
  auto odd = ParseFunctionRef("a:b:c");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->name, "a:b:c");  // not a valid name: no function has it
}

}  // namespace
}  // namespace forklet::api
