// MaxItems and Marker over a listing: pages cover it once, in order, and bad input is refused.
#include "runtime/api/pagination.h"

#include <gtest/gtest.h>

namespace forklet::api {
namespace {

std::vector<ListItem> Items(int n) {
  std::vector<ListItem> items;
  for (int i = 0; i < n; ++i) {
    char key[8];
    snprintf(key, sizeof(key), "f%03d", i);
    items.emplace_back(key, key);
  }
  return items;
}

HttpRequest Query(std::map<std::string, std::string> q) {
  HttpRequest r;
  r.method = "GET";
  r.query = std::move(q);
  return r;
}

TEST(PaginationTest, PagesCoverTheListingOnceInOrder) {
  auto items = Items(7);
  std::vector<std::string> seen;
  std::string marker;
  int pages = 0;
  do {
    std::map<std::string, std::string> q{{"MaxItems", "3"}};
    if (!marker.empty()) q["Marker"] = marker;
    auto page = ListPage(Query(q), items, "Things");
    ASSERT_TRUE(page) << page.error().ToString();
    for (auto& t : (*page)["Things"]) seen.push_back(t);
    marker = page->value("NextMarker", "");
    ++pages;
  } while (!marker.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(seen[i], items[i].first);
}

TEST(PaginationTest, WithoutMaxItemsAPageIsCapped) {
  auto page = ListPage(Query({}), Items(60), "Things");
  ASSERT_TRUE(page);
  EXPECT_EQ((*page)["Things"].size(), 50u);
  EXPECT_TRUE(page->contains("NextMarker"));
  auto small = ListPage(Query({}), Items(2), "Things");
  ASSERT_TRUE(small);
  EXPECT_EQ((*small)["Things"].size(), 2u);
  EXPECT_FALSE(small->contains("NextMarker"));
}

TEST(PaginationTest, AMarkerSurvivesARemovedItem) {
  auto items = Items(4);
  auto first = ListPage(Query({{"MaxItems", "2"}}), items, "Things");
  ASSERT_TRUE(first);
  items.erase(items.begin() + 1);  // the last item of the first page goes
  auto second = ListPage(Query({{"MaxItems", "2"}, {"Marker", (*first)["NextMarker"]}}), items, "Things");
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["Things"][0], "f002");
}

TEST(PaginationTest, BadMaxItemsAndMarkersAreRefused) {
  for (const char* bad : {"0", "-1", "abc", "10001", ""}) {
    auto page = ListPage(Query({{"MaxItems", bad}}), Items(3), "Things");
    ASSERT_FALSE(page) << bad;
    EXPECT_EQ(page.error().op, "InvalidParameterValueException");
  }
  auto page = ListPage(Query({{"Marker", "not-a-marker"}}), Items(3), "Things");
  ASSERT_FALSE(page);
  EXPECT_NE(page.error().message.find("Marker"), std::string::npos);
  auto small = ListPage(Query({{"MaxItems", "51"}}), Items(3), "Things", {50, 50});
  EXPECT_FALSE(small);
}

}  // namespace
}  // namespace forklet::api
