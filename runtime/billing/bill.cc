// A bill: usage and cost per function over a time window, from the ledger, as a table, JSON or
#include "runtime/billing/bill.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "runtime/registry/function_key.h"

namespace forklet::billing {
namespace {

void Add(FunctionUsage& into, const FunctionUsage& u) {
  into.invocations += u.invocations;
  into.requests += u.requests;
  into.throttled += u.throttled;
  into.errors += u.errors;
  into.billed_ms += u.billed_ms;
  into.mb_ms += u.mb_ms;
  into.request_cost_pd += u.request_cost_pd;
  into.compute_cost_pd += u.compute_cost_pd;
  into.events_accepted += u.events_accepted;
  into.events_run += u.events_run;
  into.events_retried += u.events_retried;
  into.events_expired += u.events_expired;
  into.events_dead_lettered += u.events_dead_lettered;
}

bool HasEvents(const Bill& bill) {
  const FunctionUsage& t = bill.total;
  return t.events_accepted || t.events_run || t.events_retried || t.events_expired ||
         t.events_dead_lettered;
}

std::vector<std::string> EventCells(const FunctionUsage& u) {
  return {std::to_string(u.events_accepted), std::to_string(u.events_run),
          std::to_string(u.events_retried), std::to_string(u.events_expired),
          std::to_string(u.events_dead_lettered)};
}

std::string Seconds(int64_t ms) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld.%03lld", static_cast<long long>(ms / 1000),
           static_cast<long long>(ms % 1000));
  return buf;
}

std::vector<std::string> Cells(const std::string& account, const std::string& function,
                               const FunctionUsage& u) {
  return {account,
          function,
          std::to_string(u.invocations),
          std::to_string(u.requests),
          std::to_string(u.throttled),
          std::to_string(u.errors),
          Seconds(u.billed_ms),
          FormatGbSeconds(u.mb_ms),
          FormatDollars(u.request_cost_pd),
          FormatDollars(u.compute_cost_pd),
          FormatDollars(u.cost_pd())};
}

nlohmann::json UsageJson(const FunctionUsage& u) {
  return {{"invocations", u.invocations},
          {"requests", u.requests},
          {"throttled", u.throttled},
          {"errors", u.errors},
          {"billed_ms", u.billed_ms},
          {"mb_ms", u.mb_ms},
          {"gb_seconds", FormatGbSeconds(u.mb_ms)},
          {"request_cost_picodollars", u.request_cost_pd},
          {"compute_cost_picodollars", u.compute_cost_pd},
          {"cost_picodollars", u.cost_pd()},
          {"request_cost_usd", FormatDollars(u.request_cost_pd)},
          {"compute_cost_usd", FormatDollars(u.compute_cost_pd)},
          {"cost_usd", FormatDollars(u.cost_pd())},
          {"events",
           {{"accepted", u.events_accepted},
            {"run", u.events_run},
            {"retried", u.events_retried},
            {"expired", u.events_expired},
            {"dead_lettered", u.events_dead_lettered}}}};
}

const std::vector<std::string> kColumns = {"ACCOUNT", "FUNCTION",  "INVOCATIONS", "REQUESTS",  "THROTTLED",
                                           "ERRORS",    "BILLED_S",    "GB_SECONDS", "REQUEST_USD",
                                           "COMPUTE_USD", "COST_USD"};
// Event invocations' steps: in the CSV always, in the table when the window has any.
const std::vector<std::string> kEventColumns = {"EVENTS_ACCEPTED", "EVENTS_RUN", "EVENTS_RETRIED",
                                                "EVENTS_EXPIRED", "EVENTS_DEAD_LETTERED"};

// Every line of a bill below its header: functions, each account's TOTAL (more than one
// account), the grand TOTAL; with Event invocations' counts at the end when `events`.
std::vector<std::vector<std::string>> Lines(const Bill& bill, bool events) {
  std::vector<std::vector<std::string>> rows;
  auto add = [&](const std::string& account, const std::string& function, const FunctionUsage& u) {
    auto c = Cells(account, function, u);
    if (events)
      for (auto& e : EventCells(u)) c.push_back(std::move(e));
    rows.push_back(std::move(c));
  };
  for (const auto& u : bill.functions) add(registry::AccountOf(u.function), registry::NameOf(u.function), u);
  if (bill.accounts.size() > 1)
    for (const auto& a : bill.accounts) add(a.function, "TOTAL", a);
  add("*", "TOTAL", bill.total);
  return rows;
}

}  // namespace

Result<Bill> MakeBill(Ledger& ledger, int64_t from_ms, int64_t to_ms, const std::string& function,
                      const std::string& account) {
  auto rows = ledger.Usage(from_ms, to_ms, function);
  if (!rows) return rows.error();
  Bill b;
  b.from_ms = from_ms;
  b.to_ms = to_ms;
  std::map<std::string, FunctionUsage> accounts;
  for (auto& u : rows.value()) {
    const std::string owner = registry::AccountOf(u.function);
    if (!account.empty() && owner != account) continue;
    FunctionUsage& a = accounts[owner];
    a.function = owner;
    Add(a, u);
    b.functions.push_back(std::move(u));
  }
  std::stable_sort(b.functions.begin(), b.functions.end(), [](const FunctionUsage& x, const FunctionUsage& y) {
    auto kx = registry::SplitFunctionKey(x.function), ky = registry::SplitFunctionKey(y.function);
    return std::tie(kx.account, kx.name) < std::tie(ky.account, ky.name);
  });
  for (auto& [id, a] : accounts) b.accounts.push_back(std::move(a));
  b.total.function = "TOTAL";
  for (const auto& u : b.functions) Add(b.total, u);
  return b;
}

std::string BillTable(const Bill& bill) {
  const bool events = HasEvents(bill);
  std::vector<std::string> header = kColumns;
  if (events) header.insert(header.end(), kEventColumns.begin(), kEventColumns.end());
  std::vector<std::vector<std::string>> rows = {header};
  for (auto& line : Lines(bill, events)) rows.push_back(std::move(line));
  std::vector<size_t> width(header.size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::string out = "usage from " + FormatTime(bill.from_ms) + " to " + FormatTime(bill.to_ms) +
                    " (by invocation start)\n";
  for (size_t n = 0; n < rows.size(); ++n) {
    if (n + 1 == rows.size()) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      out += std::string(total - 2, '-') + "\n";
    }
    std::string line;
    for (size_t i = 0; i < rows[n].size(); ++i) {
      const std::string& c = rows[n][i];
      std::string pad(width[i] - c.size(), ' ');
      line += i <= 1 ? c + pad : pad + c;  // account and name left, numbers right
      if (i + 1 < rows[n].size()) line += "  ";
    }
    out += line + "\n";
  }
  return out;
}

std::string BillJson(const Bill& bill) {
  nlohmann::json fns = nlohmann::json::array();
  for (const auto& u : bill.functions) {
    nlohmann::json f = UsageJson(u);
    f["account"] = registry::AccountOf(u.function);
    f["function"] = registry::NameOf(u.function);
    fns.push_back(std::move(f));
  }
  nlohmann::json accounts = nlohmann::json::array();
  for (const auto& a : bill.accounts) {
    nlohmann::json j = UsageJson(a);
    j["account"] = a.function;
    accounts.push_back(std::move(j));
  }
  nlohmann::json total = UsageJson(bill.total);
  total["function"] = "TOTAL";
  nlohmann::json j = {{"from", FormatTime(bill.from_ms)}, {"to", FormatTime(bill.to_ms)},
                      {"from_ms", bill.from_ms},      {"to_ms", bill.to_ms},
                      {"functions", fns},             {"accounts", accounts},
                      {"total", total}};
  return j.dump(1) + "\n";
}

std::string BillCsv(const Bill& bill) {
  // Function names are [A-Za-z0-9_-] (Lambda's rule), so no field needs quoting.
  std::string out;
  std::vector<std::string> header = kColumns;
  header.insert(header.end(), kEventColumns.begin(), kEventColumns.end());
  for (size_t i = 0; i < header.size(); ++i) {
    std::string c = header[i];
    for (char& ch : c) ch = static_cast<char>(tolower(ch));
    out += (i ? "," : "") + c;
  }
  out += "\n";
  for (const auto& cells : Lines(bill, true)) {
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + cells[i];
    out += "\n";
  }
  return out;
}

Result<int64_t> ParseTime(const std::string& text, int64_t now_ms) {
  auto bad = MakeError("time '" + text + "'",
                       "expected epoch ms, an ISO 8601 UTC time (2024-05-01T12:00:00Z), now, or "
                       "-N[smhd]");
  if (text == "now") return now_ms;
  if (text.size() >= 3 && text[0] == '-') {
    char unit = text.back();
    int64_t scale = unit == 's' ? 1000 : unit == 'm' ? 60'000 : unit == 'h' ? 3'600'000
                  : unit == 'd' ? 86'400'000 : 0;
    std::string n = text.substr(1, text.size() - 2);
    if (!scale || n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 9)
      return bad;
    return now_ms - std::stoll(n) * scale;
  }
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    if (text.size() > 15) return bad;
    return std::stoll(text);
  }
  std::tm tm{};
  int ms = 0;
  int n = 0;
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  if (sscanf(text.c_str(), "%4d-%2d-%2d%n", &year, &mon, &day, &n) != 3) return bad;
  std::string rest = text.substr(static_cast<size_t>(n));
  if (!rest.empty()) {
    int m = 0;
    if (rest[0] != 'T' && rest[0] != ' ') return bad;
    if (sscanf(rest.c_str() + 1, "%2d:%2d%n", &hour, &min, &m) != 2) return bad;
    rest = rest.substr(1 + static_cast<size_t>(m));
    if (!rest.empty() && rest[0] == ':') {
      if (sscanf(rest.c_str() + 1, "%2d%n", &sec, &m) != 1) return bad;
      rest = rest.substr(1 + static_cast<size_t>(m));
      if (!rest.empty() && rest[0] == '.') {
        if (sscanf(rest.c_str() + 1, "%3d%n", &ms, &m) != 1 || m != 3) return bad;
        rest = rest.substr(1 + static_cast<size_t>(m));
      }
    }
    if (rest == "Z" || rest == "+00:00") rest.clear();
    if (!rest.empty()) return bad;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return bad;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

std::string FormatTime(int64_t epoch_ms) {
  std::time_t t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(epoch_ms % 1000));
  return buf;
}

}  // namespace forklet::billing
