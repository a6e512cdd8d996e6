#include "rules.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <google/protobuf/unknown_field_set.h>
#include <re2/re2.h>

#include "buf/validate/validate.pb.h"
#include "cel.h"
#include "flower_meta/v1/options.pb.h"

namespace flower_meta_reader {
namespace {

using buf::validate::FieldRules;
using buf::validate::MessageRules;
using buf::validate::OneofRules;
using flower_meta::v1::FieldSpec;
using flower_meta::v1::MessageSpec;
using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

// ---------------------------------------------------------------- rule kinds

const char* const kEnforced[] = {
    "required", "ignore.IGNORE_IF_ZERO_VALUE", "ignore.IGNORE_ALWAYS",
    "bool.const", "bool.example",
    "string.const", "string.len", "string.min_len", "string.max_len", "string.len_bytes",
    "string.min_bytes", "string.max_bytes", "string.pattern", "string.prefix",
    "string.suffix", "string.contains", "string.not_contains", "string.in", "string.not_in",
    "string.uuid", "string.tuuid", "string.ulid", "string.protobuf_fqn",
    "string.protobuf_dot_fqn", "string.well_known_regex", "string.strict", "string.example",
    "bytes.const", "bytes.len", "bytes.min_len", "bytes.max_len", "bytes.pattern",
    "bytes.prefix", "bytes.suffix", "bytes.contains", "bytes.in", "bytes.not_in", "bytes.ip",
    "bytes.ipv4", "bytes.ipv6", "bytes.uuid", "bytes.example",
    "enum.const", "enum.defined_only", "enum.in", "enum.not_in", "enum.example",
    "repeated.min_items", "repeated.max_items", "repeated.unique", "repeated.items",
    "map.min_pairs", "map.max_pairs", "map.keys", "map.values",
    "any.in", "any.not_in",
    "duration.const", "duration.lt", "duration.lte", "duration.gt", "duration.gte",
    "duration.in", "duration.not_in", "duration.example",
    "timestamp.const", "timestamp.lt", "timestamp.lte", "timestamp.lt_now", "timestamp.gt",
    "timestamp.gte", "timestamp.gt_now", "timestamp.within", "timestamp.example",
    "field_mask.const", "field_mask.in", "field_mask.not_in", "field_mask.example",
    "message.oneof", "oneof.required",
    "cel", "cel_expression", "message.cel", "message.cel_expression",
};
const char* const kNumberKinds[] = {"float",   "double",  "int32",    "int64",
                                    "uint32",  "uint64",  "sint32",   "sint64",
                                    "fixed32", "fixed64", "sfixed32", "sfixed64"};
const char* const kNumberRules[] = {"const", "lt", "lte", "gt", "gte", "in", "not_in", "example"};

// The kinds a rules message sets, containers' own rules too (rule_kinds.py's names).
void KindsOf(const Message& rules, std::vector<std::string>* out) {
  const Reflection& r = *rules.GetReflection();
  std::vector<const FieldDescriptor*> set;
  r.ListFields(rules, &set);
  for (const FieldDescriptor* field : set) {
    if (field->containing_oneof() == nullptr) {
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
        out->push_back(field->name() + "." + r.GetEnum(rules, field)->name());
      } else {
        out->push_back(field->name());
      }
      continue;
    }
    const Message& typed = r.GetMessage(rules, field);
    std::vector<const FieldDescriptor*> inner;
    typed.GetReflection()->ListFields(typed, &inner);
    for (const FieldDescriptor* rule : inner) {
      if (rule->is_extension()) {
        out->push_back(field->name() + ".predefined");
        continue;
      }
      const std::string kind = field->name() + "." + rule->name();
      out->push_back(kind);
      if (kind == "repeated.items" || kind == "map.keys" || kind == "map.values") {
        KindsOf(typed.GetReflection()->GetMessage(typed, rule), out);
      }
    }
    if (!typed.GetReflection()->GetUnknownFields(typed).empty()) {
      out->push_back(field->name() + ".predefined");  // an extension not linked in
    }
  }
}

// ------------------------------------------------------- effective rules

bool IsMap(const FieldDescriptor& field) { return field.is_map(); }

const char* NumberKind(FieldDescriptor::Type type) {
  switch (type) {
    case FieldDescriptor::TYPE_FLOAT: return "float";
    case FieldDescriptor::TYPE_DOUBLE: return "double";
    case FieldDescriptor::TYPE_INT32: return "int32";
    case FieldDescriptor::TYPE_INT64: return "int64";
    case FieldDescriptor::TYPE_UINT32: return "uint32";
    case FieldDescriptor::TYPE_UINT64: return "uint64";
    case FieldDescriptor::TYPE_SINT32: return "sint32";
    case FieldDescriptor::TYPE_SINT64: return "sint64";
    case FieldDescriptor::TYPE_FIXED32: return "fixed32";
    case FieldDescriptor::TYPE_FIXED64: return "fixed64";
    case FieldDescriptor::TYPE_SFIXED32: return "sfixed32";
    case FieldDescriptor::TYPE_SFIXED64: return "sfixed64";
    default: return nullptr;
  }
}

bool HasLegacyRules(const FieldSpec& spec) {
  return spec.required() || spec.finite() || spec.has_gt() || spec.has_gte() || spec.has_lt() ||
         spec.has_lte();
}

// Set a number rule of `typed` (an <Type>Rules message) from a v1.0 double bound.
void SetBound(Message* typed, const std::string& name, double bound) {
  const Reflection& r = *typed->GetReflection();
  const FieldDescriptor* field = typed->GetDescriptor()->FindFieldByName(name);
  const bool down = name == "gt" || name == "lte";  // x > 0.5 is x > 0 for integers
  const double whole = down ? std::floor(bound) : std::ceil(bound);
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE: r.SetDouble(typed, field, bound); break;
    case FieldDescriptor::CPPTYPE_FLOAT: r.SetFloat(typed, field, static_cast<float>(bound)); break;
    case FieldDescriptor::CPPTYPE_INT32: r.SetInt32(typed, field, static_cast<int32_t>(whole)); break;
    case FieldDescriptor::CPPTYPE_INT64: r.SetInt64(typed, field, static_cast<int64_t>(whole)); break;
    case FieldDescriptor::CPPTYPE_UINT32: r.SetUInt32(typed, field, static_cast<uint32_t>(whole)); break;
    default: r.SetUInt64(typed, field, static_cast<uint64_t>(whole)); break;
  }
}

// A v1.0 schema's (flower_meta.v1.field) rules, as the buf.validate rules they mean.
FieldRules Restated(const FieldDescriptor& field, const FieldSpec& spec) {
  FieldRules rules;
  if (spec.required()) rules.set_required(true);
  const char* kind = NumberKind(field.type());
  if (kind == nullptr || !(spec.finite() || spec.has_gt() || spec.has_gte() || spec.has_lt() ||
                           spec.has_lte())) {
    return rules;
  }
  FieldRules* holder = field.is_repeated() ? rules.mutable_repeated()->mutable_items() : &rules;
  Message* typed = holder->GetReflection()->MutableMessage(
      holder, FieldRules::descriptor()->FindFieldByName(kind));
  if (spec.finite()) {
    typed->GetReflection()->SetBool(typed, typed->GetDescriptor()->FindFieldByName("finite"), true);
  }
  if (spec.has_gt()) SetBound(typed, "gt", spec.gt());
  if (spec.has_gte()) SetBound(typed, "gte", spec.gte());
  if (spec.has_lt()) SetBound(typed, "lt", spec.lt());
  if (spec.has_lte()) SetBound(typed, "lte", spec.lte());
  return rules;
}

std::mutex rules_mutex;

// The field's rules: its (buf.validate.field) option, else v1.0's restated.
const FieldRules& RulesOf(const FieldDescriptor& field) {
  static auto* cache = new std::map<const FieldDescriptor*, std::unique_ptr<FieldRules>>();
  std::lock_guard<std::mutex> lock(rules_mutex);
  auto found = cache->find(&field);
  if (found != cache->end()) return *found->second;
  const auto& options = field.options();
  auto rules = std::make_unique<FieldRules>();
  if (options.HasExtension(buf::validate::field)) {
    *rules = options.GetExtension(buf::validate::field);
  } else if (options.HasExtension(flower_meta::v1::field)) {
    *rules = Restated(field, options.GetExtension(flower_meta::v1::field));
  }
  return *cache->emplace(&field, std::move(rules)).first->second;
}

// ------------------------------------------------------------- text

std::string Decimal(int64_t value) { return std::to_string(value); }
std::string Decimal(uint64_t value) { return std::to_string(value); }

// A proto3 JSON duration: "1.000000500s", "-1.500s", "0s".
std::string DurationText(int64_t seconds, int32_t nanos) {
  const bool negative = seconds < 0 || nanos < 0;
  uint64_t whole = static_cast<uint64_t>(seconds < 0 ? -seconds : seconds);
  int32_t fraction = nanos < 0 ? -nanos : nanos;
  std::string text = (negative ? "-" : "") + std::to_string(whole);
  if (fraction != 0) {
    char digits[16];
    std::snprintf(digits, sizeof digits, "%09d", fraction);
    std::string f(digits);
    if (f.substr(6) == "000") f = f.substr(0, 6);
    if (f.size() == 6 && f.substr(3) == "000") f = f.substr(0, 3);
    text += "." + f;
  }
  return text + "s";
}

// A proto3 JSON timestamp: RFC 3339 in UTC, 0, 3, 6 or 9 fractional digits.
std::string TimestampText(int64_t seconds, int32_t nanos) {
  int64_t days = seconds / 86400, rest = seconds % 86400;
  if (rest < 0) rest += 86400, --days;
  // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2);
  char text[64];
  std::snprintf(text, sizeof text, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld",
                static_cast<long long>(year), static_cast<long long>(month),
                static_cast<long long>(day), static_cast<long long>(rest / 3600),
                static_cast<long long>(rest / 60 % 60), static_cast<long long>(rest % 60));
  std::string out(text);
  if (nanos != 0) {
    char digits[16];
    std::snprintf(digits, sizeof digits, "%09d", nanos);
    std::string f(digits);
    if (f.substr(6) == "000") f = f.substr(0, 6);
    if (f.size() == 6 && f.substr(3) == "000") f = f.substr(0, 3);
    out += "." + f;
  }
  return out + "Z";
}

std::string Hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += std::string{digits[c >> 4], digits[c & 15]};
  return out;
}

// Bytes as UTF-8, each invalid sequence's maximal subpart one U+FFFD (WHATWG).
std::string LossyUtf8(const std::string& bytes) {
  std::string out;
  size_t i = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  while (i < n) {
    const unsigned char c = s[i];
    size_t need = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (c < 0x80) {
      out += static_cast<char>(c), ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;
    } else {
      out += "\xEF\xBF\xBD", ++i;
      continue;
    }
    size_t j = 1;
    for (; j <= need && i + j < n; ++j) {
      const unsigned char d = s[i + j];
      if (d < (j == 1 ? low : 0x80) || d > (j == 1 ? high : 0xBF)) break;
    }
    if (j == need + 1) {
      out.append(bytes, i, need + 1);
      i += need + 1;
    } else {
      out += "\xEF\xBF\xBD";
      i += j;
    }
  }
  return out;
}

size_t CodePoints(const std::string& text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

bool ValidUtf8(const std::string& bytes) { return LossyUtf8(bytes) == bytes; }

// ------------------------------------------------------------- values

// One value of a field: a scalar, an element, or a map key or value.
struct Value {
  enum Kind { kSigned, kUnsigned, kDouble, kBool, kString, kEnum, kMessage } kind = kSigned;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  bool b = false;
  std::string s;
  const Message* m = nullptr;
};

// The value of `field` in `owner`: element `index` if repeated (-1: singular).
Value Read(const Message& owner, const FieldDescriptor& field, int index) {
  const Reflection& r = *owner.GetReflection();
  const bool list = index >= 0;
  Value v;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      v.kind = Value::kSigned;
      v.i = list ? r.GetRepeatedInt32(owner, &field, index) : r.GetInt32(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      v.kind = Value::kSigned;
      v.i = list ? r.GetRepeatedInt64(owner, &field, index) : r.GetInt64(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      v.kind = Value::kUnsigned;
      v.u = list ? r.GetRepeatedUInt32(owner, &field, index) : r.GetUInt32(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      v.kind = Value::kUnsigned;
      v.u = list ? r.GetRepeatedUInt64(owner, &field, index) : r.GetUInt64(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      v.kind = Value::kDouble;
      v.d = list ? r.GetRepeatedFloat(owner, &field, index) : r.GetFloat(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      v.kind = Value::kDouble;
      v.d = list ? r.GetRepeatedDouble(owner, &field, index) : r.GetDouble(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      v.kind = Value::kBool;
      v.b = list ? r.GetRepeatedBool(owner, &field, index) : r.GetBool(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      v.kind = Value::kString;
      v.s = list ? r.GetRepeatedString(owner, &field, index) : r.GetString(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      v.kind = Value::kEnum;
      v.i = list ? r.GetRepeatedEnumValue(owner, &field, index) : r.GetEnumValue(owner, &field);
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      v.kind = Value::kMessage;
      v.m = list ? &r.GetRepeatedMessage(owner, &field, index) : &r.GetMessage(owner, &field);
      break;
  }
  return v;
}

bool IsZero(const Value& v) {
  switch (v.kind) {
    case Value::kSigned: case Value::kEnum: return v.i == 0;
    case Value::kUnsigned: return v.u == 0;
    case Value::kDouble: return v.d == 0;
    case Value::kBool: return !v.b;
    case Value::kString: return v.s.empty();
    case Value::kMessage: return false;
  }
  return false;
}

// A rule's value (field `name` of a rules message; element `index` if repeated)
// in the domain of the field's values.
Value RuleValue(const Message& rules, const FieldDescriptor& rule, int index) {
  return Read(rules, rule, index);
}

// -1, 0, 1; nullopt when unordered (NaN).
std::optional<int> Compare(const Value& a, const Value& b) {
  if (a.kind == Value::kDouble || b.kind == Value::kDouble) {
    const double x = a.kind == Value::kDouble ? a.d : a.kind == Value::kUnsigned ? a.u : a.i;
    const double y = b.kind == Value::kDouble ? b.d : b.kind == Value::kUnsigned ? b.u : b.i;
    if (std::isnan(x) || std::isnan(y)) return std::nullopt;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind == Value::kUnsigned && b.kind == Value::kUnsigned) return a.u < b.u ? -1 : a.u > b.u;
  if (a.kind != Value::kUnsigned && b.kind != Value::kUnsigned) return a.i < b.i ? -1 : a.i > b.i;
  if (a.kind == Value::kUnsigned) return b.i < 0 ? 1 : (a.u < uint64_t(b.i) ? -1 : a.u > uint64_t(b.i));
  return a.i < 0 ? -1 : (uint64_t(a.i) < b.u ? -1 : uint64_t(a.i) > b.u);
}

bool Equal(const Value& a, const Value& b) {
  if (a.kind == Value::kString || b.kind == Value::kString) return a.s == b.s;
  if (a.kind == Value::kBool) return a.b == b.b;
  auto c = Compare(a, b);
  return c.has_value() && *c == 0;
}

std::string Text(const Value& v) {
  switch (v.kind) {
    case Value::kSigned: case Value::kEnum: return Decimal(v.i);
    case Value::kUnsigned: return Decimal(v.u);
    case Value::kDouble: return NumberText(v.d);
    case Value::kBool: return v.b ? "true" : "false";
    default: return v.s;
  }
}

// ------------------------------------------------------------- refusals

// A rule that cannot be evaluated on this payload: Validate refuses it as
// rule_error, naming the message type validated.
struct RuleFailure {
  std::string what;
};

// Where a check stands: the path printed so far, and the field a refusal is about.
struct Where {
  std::string path;
  const FieldDescriptor* field = nullptr;  // nullptr: a message's or oneof's own rule
  const Descriptor* owner = nullptr;       // the message whose defaults apply
  bool subscripted = false;                // at an element or an entry
  bool for_key = false;
};

std::string Reason(const std::string& own, const std::string& fallback_own,
                   const char* fallback) {
  return !own.empty() ? own : !fallback_own.empty() ? fallback_own : fallback;
}

[[noreturn]] void Refuse(const Where& at, const std::string& rule_id, const std::string& words) {
  const MessageSpec& defaults = at.owner->options().GetExtension(flower_meta::v1::message);
  std::string reason;
  if (at.field != nullptr) {
    const FieldSpec& spec = at.field->options().GetExtension(flower_meta::v1::field);
    reason = rule_id == "required"
                 ? Reason(spec.missing_reason(), defaults.missing_reason(), "missing_field")
                 : Reason(spec.invalid_reason(), defaults.invalid_reason(), "out_of_range");
  } else {
    reason = rule_id == "required" ? Reason("", defaults.missing_reason(), "missing_field")
                                   : Reason("", defaults.invalid_reason(), "out_of_range");
  }
  const std::string said = (at.for_key ? "key " : "") + words;
  throw Rejected{reason, at.path.empty() ? said : at.path + ": " + said, at.path, rule_id};
}

// ------------------------------------------------------------- numbers

struct NumberRule {
  std::string kind;
  bool finite = false;
  std::vector<std::pair<std::string, Value>> bounds;  // lower first
};

const char* Symbol(const std::string& bound) {
  return bound == "gte" ? ">=" : bound == "gt" ? ">" : bound == "lte" ? "<=" : "<";
}

std::string Words(const NumberRule& rule) {
  std::string text = rule.finite ? "finite" : "";
  for (const auto& [name, value] : rule.bounds) {
    text += (text.empty() ? "" : " and ") + std::string(Symbol(name)) + " " + Text(value);
  }
  return text;
}

// The number type's rules in `typed` (e.g. DoubleRules), as one NumberRule.
NumberRule NumberRuleOf(const Message& typed, const std::string& kind) {
  NumberRule rule;
  rule.kind = kind;
  const Descriptor& d = *typed.GetDescriptor();
  const Reflection& r = *typed.GetReflection();
  const FieldDescriptor* finite = d.FindFieldByName("finite");
  rule.finite = finite != nullptr && r.GetBool(typed, finite);
  for (const char* name : {"gt", "gte", "lt", "lte"}) {
    const FieldDescriptor* field = d.FindFieldByName(name);
    if (r.HasField(typed, field)) rule.bounds.emplace_back(name, RuleValue(typed, *field, -1));
  }
  return rule;
}

// The field's own number rule (its elements' if repeated), if any.
std::optional<NumberRule> OwnNumberRule(const FieldDescriptor& field) {
  const char* kind = NumberKind(field.type());
  if (kind == nullptr || IsMap(field)) return std::nullopt;
  const FieldRules& rules = RulesOf(field);
  const FieldRules& holder = field.is_repeated() ? rules.repeated().items() : rules;
  const FieldDescriptor* typed_field = FieldRules::descriptor()->FindFieldByName(kind);
  if (!holder.GetReflection()->HasField(holder, typed_field)) return std::nullopt;
  NumberRule rule = NumberRuleOf(holder.GetReflection()->GetMessage(holder, typed_field), kind);
  if (!rule.finite && rule.bounds.empty()) return std::nullopt;
  return rule;
}

std::string ListText(const Message& rules, const FieldDescriptor& list,
                     std::string (*text)(const Value&)) {
  std::string out = "[";
  const int n = rules.GetReflection()->FieldSize(rules, &list);
  for (int k = 0; k < n; ++k) out += (k ? ", " : "") + text(RuleValue(rules, list, k));
  return out + "]";
}

bool InList(const Message& rules, const FieldDescriptor& list, const Value& v) {
  const int n = rules.GetReflection()->FieldSize(rules, &list);
  for (int k = 0; k < n; ++k) {
    if (Equal(v, RuleValue(rules, list, k))) return true;
  }
  return false;
}

// Does `v` pass bound `name`? NaN passes none.
bool Passes(const Value& v, const std::string& name, const Value& bound) {
  const auto c = Compare(v, bound);
  if (!c.has_value()) return false;
  if (name == "gt") return *c > 0;
  if (name == "gte") return *c >= 0;
  if (name == "lt") return *c < 0;
  return *c <= 0;
}

std::string SideText(const std::string& name) {
  return name == "gt" ? "greater than" : name == "gte" ? "greater than or equal to"
       : name == "lt" ? "less than" : "less than or equal to";
}

// Numbers, durations and timestamps share the rules' shape: `kind` names
// the rules, `text` prints a value, `own` the field's own number rule words.
void CheckOrdered(const Message& typed, const std::string& kind, const Value& v,
                  std::string (*text)(const Value&), const Where& at,
                  const std::optional<NumberRule>& own) {
  const Descriptor& d = *typed.GetDescriptor();
  const Reflection& r = *typed.GetReflection();
  const bool floating = v.kind == Value::kDouble;
  const bool nan = floating && std::isnan(v.d);
  auto has = [&](const char* name) {
    const FieldDescriptor* f = d.FindFieldByName(name);
    return f != nullptr && !f->is_repeated() && r.HasField(typed, f);
  };
  auto value = [&](const char* name) { return RuleValue(typed, *d.FindFieldByName(name), -1); };
  auto words = [&](const std::string& id, const std::string& theirs) {
    const bool mine = own.has_value() && at.subscripted == (at.field != nullptr &&
                                                            at.field->is_repeated());
    if (mine) {
      std::string names;
      for (const auto& [name, unused] : own->bounds) names += (names.empty() ? "" : "_") + name;
      if (id == kind + ".finite" || (!names.empty() && id == kind + "." + names)) {
        return "must be " + Words(*own) + ", got " + Text(v);
      }
    }
    return theirs;
  };
  if (has("const") && !Equal(v, value("const"))) {
    Refuse(at, kind + ".const", words(kind + ".const", "must equal " + text(value("const"))));
  }
  const char* low = has("gt") ? "gt" : has("gte") ? "gte" : nullptr;
  const char* high = has("lt") ? "lt" : has("lte") ? "lte" : nullptr;
  if (high != nullptr && low == nullptr && (nan || !Passes(v, high, value(high)))) {
    const std::string id = kind + "." + high;
    Refuse(at, id, words(id, "must be " + SideText(high) + " " + text(value(high))));
  }
  if (low != nullptr) {
    const Value lower = value(low);
    if (high == nullptr) {
      if (nan || !Passes(v, low, lower)) {
        const std::string id = kind + "." + low;
        Refuse(at, id, words(id, "must be " + SideText(low) + " " + text(lower)));
      }
    } else {
      const Value upper = value(high);
      const bool exclusive = Compare(upper, lower).value_or(0) < 0;
      const bool inside = Passes(v, low, lower) && Passes(v, high, upper);
      const bool outside = Passes(v, low, lower) || Passes(v, high, upper);
      if (nan || (exclusive ? !outside : !inside)) {
        const std::string id =
            kind + "." + low + "_" + high + (exclusive ? "_exclusive" : "");
        Refuse(at, id,
               words(id, "must be " + SideText(low) + " " + text(lower) +
                             (exclusive ? " or " : " and ") + SideText(high) + " " +
                             text(upper)));
      }
    }
  }
  for (const char* list : {"in", "not_in"}) {
    const FieldDescriptor* f = d.FindFieldByName(list);
    if (f == nullptr || r.FieldSize(typed, f) == 0) continue;
    const bool found = InList(typed, *f, v);
    if (found == (std::string(list) == "not_in")) {
      Refuse(at, kind + "." + list,
             std::string(found ? "must not be in list " : "must be in list ") +
                 ListText(typed, *f, text));
    }
  }
  if (has("finite") && r.GetBool(typed, d.FindFieldByName("finite")) && !std::isfinite(v.d)) {
    Refuse(at, kind + ".finite", words(kind + ".finite", "must be finite"));
  }
}

// ------------------------------------------------------------- strings, bytes

std::string Plain(const Value& v) { return v.s; }
std::string Lossy(const Value& v) { return LossyUtf8(v.s); }

const RE2& Pattern(const std::string& pattern) {
  static auto* cache = new std::map<std::string, std::unique_ptr<RE2>>();
  std::lock_guard<std::mutex> lock(rules_mutex);
  auto found = cache->find(pattern);
  if (found == cache->end()) {
    RE2::Options options;
    options.set_log_errors(false);
    found = cache->emplace(pattern, std::make_unique<RE2>(pattern, options)).first;
  }
  return *found->second;
}

bool Matches(const std::string& pattern, const std::string& text) {
  return RE2::PartialMatch(text, Pattern(pattern));
}

struct WellKnown {
  const char* rule;
  const char* pattern;
  const char* name;
};
const WellKnown kWellKnown[] = {
    {"uuid", "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
     "UUID"},
    {"tuuid", "^[0-9a-fA-F]{32}$", "trimmed UUID"},
    {"ulid", "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$", "ULID"},
    {"protobuf_fqn", "^[A-Za-z_][A-Za-z_0-9]*(\\.[A-Za-z_][A-Za-z_0-9]*)*$",
     "fully-qualified Protobuf name"},
    {"protobuf_dot_fqn", "^\\.[A-Za-z_][A-Za-z_0-9]*(\\.[A-Za-z_][A-Za-z_0-9]*)*$",
     "fully-qualified Protobuf name with a leading dot"},
};

void CheckString(const buf::validate::StringRules& rules, const Value& v, const Where& at) {
  const std::string& s = v.s;
  const uint64_t chars = CodePoints(s);
  if (rules.has_const_() && s != rules.const_()) {
    Refuse(at, "string.const", "must equal `" + rules.const_() + "`");
  }
  if (rules.has_len() && chars != rules.len()) {
    Refuse(at, "string.len", "must be " + Decimal(rules.len()) + " characters");
  }
  if (rules.has_min_len() && chars < rules.min_len()) {
    Refuse(at, "string.min_len", "must be at least " + Decimal(rules.min_len()) + " characters");
  }
  if (rules.has_max_len() && chars > rules.max_len()) {
    Refuse(at, "string.max_len", "must be at most " + Decimal(rules.max_len()) + " characters");
  }
  if (rules.has_len_bytes() && s.size() != rules.len_bytes()) {
    Refuse(at, "string.len_bytes", "must be " + Decimal(rules.len_bytes()) + " bytes");
  }
  if (rules.has_min_bytes() && s.size() < rules.min_bytes()) {
    Refuse(at, "string.min_bytes", "must be at least " + Decimal(rules.min_bytes()) + " bytes");
  }
  if (rules.has_max_bytes() && s.size() > rules.max_bytes()) {
    Refuse(at, "string.max_bytes", "must be at most " + Decimal(rules.max_bytes()) + " bytes");
  }
  if (rules.has_pattern() && !Matches(rules.pattern(), s)) {
    Refuse(at, "string.pattern", "does not match regex pattern `" + rules.pattern() + "`");
  }
  if (rules.has_prefix() && s.rfind(rules.prefix(), 0) != 0) {
    Refuse(at, "string.prefix", "does not have prefix `" + rules.prefix() + "`");
  }
  if (rules.has_suffix() && (s.size() < rules.suffix().size() ||
                             s.compare(s.size() - rules.suffix().size(), std::string::npos,
                                       rules.suffix()) != 0)) {
    Refuse(at, "string.suffix", "does not have suffix `" + rules.suffix() + "`");
  }
  if (rules.has_contains() && s.find(rules.contains()) == std::string::npos) {
    Refuse(at, "string.contains", "does not contain substring `" + rules.contains() + "`");
  }
  if (rules.has_not_contains() && s.find(rules.not_contains()) != std::string::npos) {
    Refuse(at, "string.not_contains", "contains substring `" + rules.not_contains() + "`");
  }
  const Descriptor& d = *rules.GetDescriptor();
  for (const char* list : {"in", "not_in"}) {
    const FieldDescriptor* f = d.FindFieldByName(list);
    if (rules.GetReflection()->FieldSize(rules, f) == 0) continue;
    const bool found = InList(rules, *f, v);
    if (found == (std::string(list) == "not_in")) {
      Refuse(at, std::string("string.") + list,
             std::string(found ? "must not be in list " : "must be in list ") +
                 ListText(rules, *f, Plain));
    }
  }
  for (const WellKnown& known : kWellKnown) {
    const FieldDescriptor* f = d.FindFieldByName(known.rule);
    if (!rules.GetReflection()->HasField(rules, f) || !rules.GetReflection()->GetBool(rules, f)) {
      continue;
    }
    const std::string id = std::string("string.") + known.rule;
    if (s.empty()) Refuse(at, id + "_empty", std::string("value is empty, which is not a valid ") + known.name);
    if (!Matches(known.pattern, s)) Refuse(at, id, std::string("must be a valid ") + known.name);
  }
  if (rules.has_well_known_regex()) {
    const bool strict = !rules.has_strict() || rules.strict();
    if (rules.well_known_regex() == buf::validate::KNOWN_REGEX_HTTP_HEADER_NAME) {
      const std::string id = "string.well_known_regex.header_name";
      if (s.empty()) Refuse(at, id + "_empty", "value is empty, which is not a valid HTTP header name");
      if (!Matches(strict ? "^:?[0-9a-zA-Z!#$%&'*+-.^_|~\\x60]+$" : "^[^\\x00\\x0A\\x0D]+$", s)) {
        Refuse(at, id, "must be a valid HTTP header name");
      }
    } else if (rules.well_known_regex() == buf::validate::KNOWN_REGEX_HTTP_HEADER_VALUE) {
      if (!Matches(strict ? "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$" : "^[^\\x00\\x0A\\x0D]*$", s)) {
        Refuse(at, "string.well_known_regex.header_value", "must be a valid HTTP header value");
      }
    }
  }
}

void CheckBytes(const buf::validate::BytesRules& rules, const Value& v, const Where& at) {
  const std::string& s = v.s;
  if (rules.has_const_() && s != rules.const_()) Refuse(at, "bytes.const", "must be " + Hex(rules.const_()));
  if (rules.has_len() && s.size() != rules.len()) {
    Refuse(at, "bytes.len", "must be " + Decimal(rules.len()) + " bytes");
  }
  if (rules.has_min_len() && s.size() < rules.min_len()) {
    Refuse(at, "bytes.min_len", "must be at least " + Decimal(rules.min_len()) + " bytes");
  }
  if (rules.has_max_len() && s.size() > rules.max_len()) {
    Refuse(at, "bytes.max_len", "must be at most " + Decimal(rules.max_len()) + " bytes");
  }
  if (rules.has_pattern()) {
    if (!ValidUtf8(s)) throw RuleFailure{"must be valid UTF-8 to apply regexp"};
    if (!Matches(rules.pattern(), s)) {
      Refuse(at, "bytes.pattern", "must match regex pattern `" + rules.pattern() + "`");
    }
  }
  if (rules.has_prefix() && s.rfind(rules.prefix(), 0) != 0) {
    Refuse(at, "bytes.prefix", "does not have prefix " + Hex(rules.prefix()));
  }
  if (rules.has_suffix() && (s.size() < rules.suffix().size() ||
                             s.compare(s.size() - rules.suffix().size(), std::string::npos,
                                       rules.suffix()) != 0)) {
    Refuse(at, "bytes.suffix", "does not have suffix " + Hex(rules.suffix()));
  }
  if (rules.has_contains() && s.find(rules.contains()) == std::string::npos) {
    Refuse(at, "bytes.contains", "does not contain " + Hex(rules.contains()));
  }
  const Descriptor& d = *rules.GetDescriptor();
  for (const char* list : {"in", "not_in"}) {
    const FieldDescriptor* f = d.FindFieldByName(list);
    if (rules.GetReflection()->FieldSize(rules, f) == 0) continue;
    const bool found = InList(rules, *f, v);
    if (found == (std::string(list) == "not_in")) {
      Refuse(at, std::string("bytes.") + list,
             std::string(found ? "must not be in list " : "must be in list ") +
                 ListText(rules, *f, Lossy));
    }
  }
  struct Sized {
    bool on;
    const char* rule;
    const char* name;
    bool ok;
  };
  const Sized sized[] = {
      {rules.ip(), "ip", "IP address", s.size() == 4 || s.size() == 16},
      {rules.ipv4(), "ipv4", "IPv4 address", s.size() == 4},
      {rules.ipv6(), "ipv6", "IPv6 address", s.size() == 16},
      {rules.uuid(), "uuid", "UUID", s.size() == 16},
  };
  for (const Sized& check : sized) {
    if (!check.on) continue;
    const std::string id = std::string("bytes.") + check.rule;
    if (s.empty()) Refuse(at, id + "_empty", std::string("value is empty, which is not a valid ") + check.name);
    if (!check.ok) Refuse(at, id, std::string("must be a valid ") + check.name);
  }
}

// ------------------------------------------------------------- messages

// A duration or a timestamp: seconds and nanoseconds, compared exactly.
struct Moment {
  int64_t seconds = 0;
  int32_t nanos = 0;
  bool operator<(const Moment& o) const {
    return seconds != o.seconds ? seconds < o.seconds : nanos < o.nanos;
  }
  bool operator==(const Moment& o) const { return seconds == o.seconds && nanos == o.nanos; }
  Moment operator+(const Moment& o) const { return Normal(seconds + o.seconds, int64_t{nanos} + o.nanos); }
  Moment operator-(const Moment& o) const { return Normal(seconds - o.seconds, int64_t{nanos} - o.nanos); }
  static Moment Normal(int64_t s, int64_t n) {
    s += n / 1000000000, n %= 1000000000;
    if (n < 0) n += 1000000000, --s;
    return Moment{s, static_cast<int32_t>(n)};
  }
};

Moment MomentOf(const Message& m) {
  const Descriptor& d = *m.GetDescriptor();
  const Reflection& r = *m.GetReflection();
  return Moment{r.GetInt64(m, d.FindFieldByName("seconds")),
                r.GetInt32(m, d.FindFieldByName("nanos"))};
}

bool MomentPasses(const Moment& v, const std::string& name, const Moment& bound) {
  if (name == "gt") return bound < v;
  if (name == "gte") return !(v < bound);
  if (name == "lt") return v < bound;
  return !(bound < v);
}

void Check(const Message& message, const std::string& path);

void CheckTime(const Message& typed, const std::string& kind, const Message& value,
               const Where& at) {
  const Moment v = MomentOf(value);
  const Descriptor& d = *typed.GetDescriptor();
  const Reflection& r = *typed.GetReflection();
  auto text = [&kind](const Moment& m) {
    return kind == "duration" ? DurationText(m.seconds, m.nanos) : TimestampText(m.seconds, m.nanos);
  };
  auto has = [&](const char* name) {
    const FieldDescriptor* f = d.FindFieldByName(name);
    return f != nullptr && r.HasField(typed, f);
  };
  auto bound = [&](const char* name) { return MomentOf(r.GetMessage(typed, d.FindFieldByName(name))); };
  // In validate.proto's order: const, lt, lte, lt_now, gt, gte, gt_now, within, in, not_in.
  if (has("const") && !(v == bound("const"))) {
    Refuse(at, kind + ".const", "must equal " + text(bound("const")));
  }
  const char* low = has("gt") ? "gt" : has("gte") ? "gte" : nullptr;
  const char* high = has("lt") ? "lt" : has("lte") ? "lte" : nullptr;
  if (high != nullptr && low == nullptr && !MomentPasses(v, high, bound(high))) {
    Refuse(at, kind + "." + high, "must be " + SideText(high) + " " + text(bound(high)));
  }
  const auto clock = std::chrono::system_clock::now().time_since_epoch();
  const int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(clock).count();
  const Moment now = Moment::Normal(nanos / 1000000000, nanos % 1000000000);
  if (kind == "timestamp" && r.GetBool(typed, d.FindFieldByName("lt_now")) && now < v) {
    Refuse(at, "timestamp.lt_now", "must be less than now");
  }
  if (low != nullptr) {
    const Moment lower = bound(low);
    if (high == nullptr) {
      if (!MomentPasses(v, low, lower)) {
        Refuse(at, kind + "." + low, "must be " + SideText(low) + " " + text(lower));
      }
    } else {
      const Moment upper = bound(high);
      const bool exclusive = upper < lower;
      const bool inside = MomentPasses(v, low, lower) && MomentPasses(v, high, upper);
      const bool outside = MomentPasses(v, low, lower) || MomentPasses(v, high, upper);
      if (exclusive ? !outside : !inside) {
        Refuse(at, kind + "." + low + "_" + high + (exclusive ? "_exclusive" : ""),
               "must be " + SideText(low) + " " + text(lower) + (exclusive ? " or " : " and ") +
                   SideText(high) + " " + text(upper));
      }
    }
  }
  if (kind == "timestamp") {
    if (r.GetBool(typed, d.FindFieldByName("gt_now")) && v < now) {
      Refuse(at, "timestamp.gt_now", "must be greater than now");
    }
    if (has("within")) {
      const Moment span = bound("within");
      if (v < now - span || now + span < v) {
        Refuse(at, "timestamp.within",
               "must be within " + DurationText(span.seconds, span.nanos) + " of now");
      }
    }
  }
  for (const char* list : {"in", "not_in"}) {
    const FieldDescriptor* f = d.FindFieldByName(list);
    if (f == nullptr || r.FieldSize(typed, f) == 0) continue;
    bool found = false;
    std::string listed = "[";
    for (int k = 0; k < r.FieldSize(typed, f); ++k) {
      const Moment item = MomentOf(r.GetRepeatedMessage(typed, f, k));
      found = found || v == item;
      listed += (k ? ", " : "") + text(item);
    }
    if (found == (std::string(list) == "not_in")) {
      Refuse(at, kind + "." + list,
             std::string(found ? "must not be in list " : "must be in list ") + listed + "]");
    }
  }
}

std::string PathsText(const google::protobuf::RepeatedPtrField<std::string>& paths) {
  std::string out = "[";
  for (int k = 0; k < paths.size(); ++k) out += (k ? ", " : "") + paths[k];
  return out + "]";
}

void CheckFieldMask(const buf::validate::FieldMaskRules& rules, const Message& value,
                    const Where& at) {
  const Descriptor& d = *value.GetDescriptor();
  const Reflection& r = *value.GetReflection();
  const FieldDescriptor* paths_field = d.FindFieldByName("paths");
  std::vector<std::string> paths;
  for (int k = 0; k < r.FieldSize(value, paths_field); ++k) {
    paths.push_back(r.GetRepeatedString(value, paths_field, k));
  }
  if (rules.has_const_()) {
    const auto& want = rules.const_().paths();
    if (!std::equal(paths.begin(), paths.end(), want.begin(), want.end())) {
      Refuse(at, "field_mask.const", "must equal paths " + PathsText(want));
    }
  }
  auto covered = [](const std::string& path,
                    const google::protobuf::RepeatedPtrField<std::string>& list) {
    for (const std::string& f : list) {
      if (path == f || path.rfind(f + ".", 0) == 0) return true;
    }
    return false;
  };
  if (rules.in_size() > 0) {
    for (const std::string& p : paths) {
      if (!covered(p, rules.in())) Refuse(at, "field_mask.in", "must only contain paths in " + PathsText(rules.in()));
    }
  }
  if (rules.not_in_size() > 0) {
    for (const std::string& p : paths) {
      if (covered(p, rules.not_in())) {
        Refuse(at, "field_mask.not_in", "must not contain any paths in " + PathsText(rules.not_in()));
      }
    }
  }
}

// The rules of one value: a field's, an element's (repeated.items) or a map
// key's or value's. `field` is the field the value belongs to (for a map's
// key or value, its entry's key or value field).
// A CEL expression, compiled once.
const cel::Program& Compiled(const std::string& expression) {
  static auto* cache = new std::map<std::string, std::unique_ptr<cel::Program>>();
  std::lock_guard<std::mutex> lock(rules_mutex);
  auto found = cache->find(expression);
  if (found == cache->end()) {
    found = cache->emplace(expression, std::make_unique<cel::Program>(cel::Compile(expression))).first;
  }
  return *found->second;
}

using Evaluate = std::function<cel::Outcome(const cel::Program&)>;

// One rule in CEL: its id, and its words when it fails.
void CheckExpression(const std::string& id, const std::string& expression,
                     const std::string& message, const Evaluate& evaluate, const Where& at) {
  cel::Outcome outcome;
  try {
    outcome = evaluate(Compiled(expression));
  } catch (const cel::EvalError& error) {
    throw RuleFailure{"error evaluating " + id + ": " + error.what};
  }
  if (outcome.passed) return;
  if (outcome.is_string) Refuse(at, id, outcome.message);
  Refuse(at, id, message.empty() ? "\"" + expression + "\" returned false" : message);
}

// The CEL rules of a field's (or an element's, a message's) rules, in
// validate.proto's order: each cel_expression, then each cel.
template <typename Rules>
void CheckCel(const Rules& rules, const Evaluate& evaluate, const Where& at) {
  for (const std::string& expression : rules.cel_expression()) {
    CheckExpression(expression, expression, "", evaluate, at);
  }
  for (const auto& rule : rules.cel()) {
    CheckExpression(rule.id(), rule.expression(), rule.message(), evaluate, at);
  }
}

const FieldDescriptor* Wrapped(const FieldDescriptor& field) {
  static const std::set<std::string> wrappers = {
      "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
      "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
      "google.protobuf.BoolValue",   "google.protobuf.StringValue", "google.protobuf.BytesValue"};
  const Descriptor* type = field.message_type();
  if (type == nullptr || field.is_map() || !wrappers.count(type->full_name())) return nullptr;
  return type->FindFieldByName("value");
}

void CheckValue(const FieldRules& rules, const FieldDescriptor& outer, const Value& given,
                const Where& at, const std::optional<NumberRule>& own) {
  const FieldDescriptor* inner = Wrapped(outer);
  const FieldDescriptor& field = inner != nullptr ? *inner : outer;
  const Value v = inner != nullptr ? Read(*given.m, *inner, -1) : given;
  switch (rules.type_case()) {
    case FieldRules::kBool:
      if (rules.bool_().has_const_() && v.b != rules.bool_().const_()) {
        Refuse(at, "bool.const", std::string("must equal ") + (rules.bool_().const_() ? "true" : "false"));
      }
      return;
    case FieldRules::kString: return CheckString(rules.string(), v, at);
    case FieldRules::kBytes: return CheckBytes(rules.bytes(), v, at);
    case FieldRules::kEnum: {
      const auto& e = rules.enum_();
      if (e.has_const_() && v.i != e.const_()) Refuse(at, "enum.const", "must equal " + Decimal(int64_t{e.const_()}));
      if (e.defined_only() && field.enum_type()->FindValueByNumber(static_cast<int>(v.i)) == nullptr) {
        Refuse(at, "enum.defined_only", "value must be one of the defined enum values");
      }
      const Descriptor& d = *e.GetDescriptor();
      for (const char* list : {"in", "not_in"}) {
        const FieldDescriptor* f = d.FindFieldByName(list);
        if (e.GetReflection()->FieldSize(e, f) == 0) continue;
        Value as_int = v;
        as_int.kind = Value::kSigned;
        const bool found = InList(e, *f, as_int);
        if (found == (std::string(list) == "not_in")) {
          Refuse(at, std::string("enum.") + list,
                 std::string(found ? "must not be in list " : "must be in list ") + ListText(e, *f, Text));
        }
      }
      return;
    }
    case FieldRules::kAny: {
      const Reflection& r = *v.m->GetReflection();
      const std::string url = r.GetString(*v.m, v.m->GetDescriptor()->FindFieldByName("type_url"));
      const auto& any = rules.any();
      if (any.in_size() > 0 && std::find(any.in().begin(), any.in().end(), url) == any.in().end()) {
        Refuse(at, "any.in", "type URL must be in the allow list");
      }
      if (std::find(any.not_in().begin(), any.not_in().end(), url) != any.not_in().end()) {
        Refuse(at, "any.not_in", "type URL must not be in the block list");
      }
      return;
    }
    case FieldRules::kDuration: return CheckTime(rules.duration(), "duration", *v.m, at);
    case FieldRules::kTimestamp: return CheckTime(rules.timestamp(), "timestamp", *v.m, at);
    case FieldRules::kFieldMask: return CheckFieldMask(rules.field_mask(), *v.m, at);
    case FieldRules::TYPE_NOT_SET: return;
    default: {
      const char* kind = NumberKind(field.type());
      if (kind == nullptr) return;
      const Message& typed = rules.GetReflection()->GetMessage(
          rules, FieldRules::descriptor()->FindFieldByName(kind));
      CheckOrdered(typed, kind, v, Text, at, own);
    }
  }
}

Where Below(const Where& parent, const std::string& step) {
  Where at = parent;
  at.path += step;
  return at;
}

std::string Quoted(const std::string& key) {
  std::string out = "[\"";
  for (char c : key) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out + "\"]";
}

std::string KeyText(const Value& key) {
  if (key.kind == Value::kString) return Quoted(key.s);
  return "[" + Text(key) + "]";
}

bool KeyBefore(const Value& a, const Value& b) {
  if (a.kind == Value::kString) return a.s < b.s;  // bytes order: UTF-8 is code point order
  if (a.kind == Value::kBool) return !a.b && b.b;
  return Compare(a, b).value_or(0) < 0;
}

bool Unique(const Message& m, const FieldDescriptor& f) {
  const int n = m.GetReflection()->FieldSize(m, &f);
  std::vector<Value> seen;
  for (int k = 0; k < n; ++k) {
    const Value v = Read(m, f, k);
    for (const Value& other : seen) {
      if (Equal(v, other)) return false;
    }
    seen.push_back(v);
  }
  return true;
}

// A field of `m` at `parent` (the message's path, "" or "inner."):
// presence, ignore, its own rules, then its elements' or entries', each
// before the message inside it.
void CheckField(const Message& m, const FieldDescriptor& f, const std::string& parent,
                bool zero_ignored) {
  const FieldRules& rules = RulesOf(f);
  if (rules.ignore() == buf::validate::IGNORE_ALWAYS) return;
  const Reflection& r = *m.GetReflection();
  Where at{parent + f.name(), &f, m.GetDescriptor(), false, false};
  const bool presence = f.has_presence() && !f.is_repeated();
  bool set;
  if (f.is_repeated()) {
    set = r.FieldSize(m, &f) > 0;
  } else if (presence) {
    set = r.HasField(m, &f);
  } else {
    set = !IsZero(Read(m, f, -1));
  }
  if (rules.required() && !set) Refuse(at, "required", "missing; it is required");
  if (presence && !set) return;
  const bool ignore_zero = rules.ignore() == buf::validate::IGNORE_IF_ZERO_VALUE ||
                           (zero_ignored && rules.ignore() == buf::validate::IGNORE_UNSPECIFIED);
  if (!presence && !set && ignore_zero) return;
  CheckCel(rules, [&](const cel::Program& p) { return cel::OnField(p, m, f); }, at);
  const std::optional<NumberRule> own = OwnNumberRule(f);
  if (IsMap(f)) {
    const auto& map_rules = rules.map();
    const int n = r.FieldSize(m, &f);
    if (map_rules.has_min_pairs() && uint64_t(n) < map_rules.min_pairs()) {
      Refuse(at, "map.min_pairs", "map must be at least " + Decimal(map_rules.min_pairs()) + " entries");
    }
    if (map_rules.has_max_pairs() && uint64_t(n) > map_rules.max_pairs()) {
      Refuse(at, "map.max_pairs", "map must be at most " + Decimal(map_rules.max_pairs()) + " entries");
    }
    const FieldDescriptor& key_field = *f.message_type()->map_key();
    const FieldDescriptor& value_field = *f.message_type()->map_value();
    std::vector<std::pair<Value, const Message*>> entries;
    for (int k = 0; k < n; ++k) {
      const Message& entry = r.GetRepeatedMessage(m, &f, k);
      entries.emplace_back(Read(entry, key_field, -1), &entry);
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return KeyBefore(a.first, b.first); });
    for (const auto& [key, entry] : entries) {
      Where here = Below(at, KeyText(key));
      here.subscripted = true;
      if (map_rules.has_keys()) {
        Where key_at = here;
        key_at.for_key = true;
        CheckCel(map_rules.keys(), [&](const cel::Program& p) { return cel::OnElement(p, *entry, key_field, -1); }, key_at);
        CheckValue(map_rules.keys(), key_field, key, key_at, std::nullopt);
      }
      const Value value = Read(*entry, value_field, -1);
      if (map_rules.has_values()) {
        CheckCel(map_rules.values(), [&](const cel::Program& p) { return cel::OnElement(p, *entry, value_field, -1); }, here);
        CheckValue(map_rules.values(), value_field, value, here, std::nullopt);
      }
      if (value.kind == Value::kMessage && map_rules.values().ignore() != buf::validate::IGNORE_ALWAYS) {
        Check(*value.m, here.path + ".");
      }
    }
    return;
  }
  if (f.is_repeated()) {
    const auto& list = rules.repeated();
    const int n = r.FieldSize(m, &f);
    if (list.has_min_items() && uint64_t(n) < list.min_items()) {
      Refuse(at, "repeated.min_items", "must contain at least " + Decimal(list.min_items()) + " item(s)");
    }
    if (list.has_max_items() && uint64_t(n) > list.max_items()) {
      Refuse(at, "repeated.max_items", "must contain no more than " + Decimal(list.max_items()) + " item(s)");
    }
    if (list.unique() && !Unique(m, f)) Refuse(at, "repeated.unique", "repeated value must contain unique items");
    for (int k = 0; k < n; ++k) {
      Where here = Below(at, "[" + std::to_string(k) + "]");
      here.subscripted = true;
      const Value value = Read(m, f, k);
      if (list.has_items()) {
        CheckCel(list.items(), [&](const cel::Program& p) { return cel::OnElement(p, m, f, k); }, here);
        CheckValue(list.items(), f, value, here, own);
      }
      if (value.kind == Value::kMessage && list.items().ignore() != buf::validate::IGNORE_ALWAYS) {
        Check(*value.m, here.path + ".");
      }
    }
    return;
  }
  const Value value = Read(m, f, -1);
  CheckValue(rules, f, value, at, own);
  if (value.kind == Value::kMessage) Check(*value.m, at.path + ".");
}

bool IsSet(const Message& m, const FieldDescriptor& f) {
  const Reflection& r = *m.GetReflection();
  if (f.is_repeated()) return r.FieldSize(m, &f) > 0;
  if (f.has_presence()) return r.HasField(m, &f);
  return !IsZero(Read(m, f, -1));
}

// Every rule of `message` at `path` ("" or "inner."): fields, then the
// message's own rules, then its oneofs'.
void Check(const Message& message, const std::string& path) {
  const Descriptor& type = *message.GetDescriptor();
  const MessageRules& own = type.options().GetExtension(buf::validate::message);
  std::set<const FieldDescriptor*> in_oneof_rule;
  for (const auto& rule : own.oneof()) {
    for (const std::string& name : rule.fields()) in_oneof_rule.insert(type.FindFieldByName(name));
  }
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& f = *type.field(i);
    CheckField(message, f, path, in_oneof_rule.count(&f) > 0);
  }
  const std::string where = path.empty() ? "" : path.substr(0, path.size() - 1);
  for (const auto& rule : own.oneof()) {
    int count = 0;
    std::string names;
    for (const std::string& name : rule.fields()) {
      count += IsSet(message, *type.FindFieldByName(name));
      names += (names.empty() ? "" : ", ") + name;
    }
    if (count > 1) Refuse(Where{where, nullptr, &type}, "message.oneof", "only one of " + names + " can be set");
    if (count == 0 && rule.required()) {
      Refuse(Where{where, nullptr, &type}, "message.oneof", "one of " + names + " must be set");
    }
  }
  CheckCel(own, [&](const cel::Program& p) { return cel::OnMessage(p, message); },
           Where{where, nullptr, &type});
  for (int i = 0; i < type.oneof_decl_count(); ++i) {
    const OneofDescriptor& oneof = *type.oneof_decl(i);
    if (oneof.is_synthetic()) continue;
    if (oneof.options().GetExtension(buf::validate::oneof).required() &&
        !message.GetReflection()->HasOneof(message, &oneof)) {
      Refuse(Where{path + oneof.name(), nullptr, &type}, "required",
             "exactly one field is required in oneof");
    }
  }
}

// ------------------------------------------------------------- the schema

// What is wrong with `kinds` of `where`, if anything.
void RefuseUnenforced(const std::vector<std::string>& kinds, const std::string& option,
                      const std::string& where, const std::string& file) {
  for (const std::string& kind : kinds) {
    if (!Enforced().count(kind)) {
      std::string shown = kind.rfind("message.", 0) == 0 || kind.rfind("oneof.", 0) == 0
                              ? kind.substr(kind.find('.') + 1)
                              : kind;
      throw SchemaRefused{file + ": " + where + ": (buf.validate." + option + ")." + shown +
                          " is not enforced by this reader"};
    }
  }
}

// The type's rules name a type that is not the field's ("string" rules on a double).
void RefuseMisplaced(const FieldRules& rules, const FieldDescriptor& field, bool many,
                     const std::string& where, const std::string& file) {
  if (rules.type_case() == FieldRules::TYPE_NOT_SET) return;
  const std::string chosen =
      FieldRules::descriptor()->FindFieldByNumber(rules.type_case())->name();
  std::string expected;
  if (many && field.is_map()) {
    expected = "map";
    if (chosen == "map") {
      if (rules.map().has_keys()) RefuseMisplaced(rules.map().keys(), *field.message_type()->map_key(), false, where, file);
      if (rules.map().has_values()) RefuseMisplaced(rules.map().values(), *field.message_type()->map_value(), false, where, file);
      return;
    }
  } else if (many) {
    expected = "repeated";
    if (chosen == "repeated") {
      if (rules.repeated().has_items()) RefuseMisplaced(rules.repeated().items(), field, false, where, file);
      return;
    }
  } else if (const FieldDescriptor* inner = Wrapped(field)) {
    expected = inner->type() == FieldDescriptor::TYPE_BOOL ? "bool"
             : inner->type() == FieldDescriptor::TYPE_STRING ? "string"
             : inner->type() == FieldDescriptor::TYPE_BYTES ? "bytes" : NumberKind(inner->type());
  } else if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    const std::string& name = field.message_type()->full_name();
    expected = name == "google.protobuf.Any" ? "any" : name == "google.protobuf.Duration" ? "duration"
             : name == "google.protobuf.Timestamp" ? "timestamp"
             : name == "google.protobuf.FieldMask" ? "field_mask" : "";
  } else if (field.type() == FieldDescriptor::TYPE_ENUM) {
    expected = "enum";
  } else if (const char* kind = NumberKind(field.type())) {
    expected = kind;
  } else {
    expected = field.type_name();
  }
  if (chosen != expected) {
    throw SchemaRefused{file + ": " + where + ": (buf.validate.field)." + chosen +
                        " rules on a field of type " + field.type_name() +
                        " (this reader applies rules of a field's own type only)"};
  }
}

// Compile every CEL expression of `rules` (a FieldRules or MessageRules).
template <typename Rules>
void CompileCel(const Rules& rules, const std::string& option, const std::string& where,
                const std::string& file) {
  std::vector<std::string> expressions(rules.cel_expression().begin(), rules.cel_expression().end());
  for (const auto& rule : rules.cel()) expressions.push_back(rule.expression());
  for (const std::string& expression : expressions) {
    try {
      Compiled(expression);
    } catch (const cel::Unsupported& unsupported) {
      throw SchemaRefused{file + ": " + where + ": (buf.validate." + option + ").cel: " +
                          unsupported.what};
    }
  }
}

void CompileFieldCel(const FieldRules& rules, const std::string& where, const std::string& file) {
  CompileCel(rules, "field", where, file);
  if (rules.has_repeated() && rules.repeated().has_items()) CompileFieldCel(rules.repeated().items(), where, file);
  if (rules.has_map()) {
    if (rules.map().has_keys()) CompileFieldCel(rules.map().keys(), where, file);
    if (rules.map().has_values()) CompileFieldCel(rules.map().values(), where, file);
  }
}

void CheckPatterns(const FieldRules& rules, const std::string& where, const std::string& file) {
  std::vector<std::string> patterns;
  if (rules.has_string() && rules.string().has_pattern()) patterns.push_back(rules.string().pattern());
  if (rules.has_bytes() && rules.bytes().has_pattern()) patterns.push_back(rules.bytes().pattern());
  if (rules.has_repeated() && rules.repeated().has_items()) CheckPatterns(rules.repeated().items(), where, file);
  if (rules.has_map()) {
    if (rules.map().has_keys()) CheckPatterns(rules.map().keys(), where, file);
    if (rules.map().has_values()) CheckPatterns(rules.map().values(), where, file);
  }
  for (const std::string& pattern : patterns) {
    if (!Pattern(pattern).ok()) {
      throw SchemaRefused{file + ": " + where + ": pattern `" + pattern + "` does not compile: " +
                          Pattern(pattern).error()};
    }
  }
}

void CheckType(const Descriptor& type, std::set<const Descriptor*>* seen) {
  if (!seen->insert(&type).second) return;
  const std::string& file = type.file()->name();
  std::vector<std::string> kinds;
  KindsOf(type.options().GetExtension(buf::validate::message), &kinds);
  for (std::string& kind : kinds) kind = "message." + kind;
  RefuseUnenforced(kinds, "message", type.full_name(), file);
  CompileCel(type.options().GetExtension(buf::validate::message), "message", type.full_name(), file);
  for (int i = 0; i < type.oneof_decl_count(); ++i) {
    const OneofDescriptor& oneof = *type.oneof_decl(i);
    kinds.clear();
    KindsOf(oneof.options().GetExtension(buf::validate::oneof), &kinds);
    for (std::string& kind : kinds) kind = "oneof." + kind;
    RefuseUnenforced(kinds, "oneof", oneof.full_name(), file);
  }
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    const auto& options = field.options();
    if (options.HasExtension(buf::validate::field) && options.HasExtension(flower_meta::v1::field) &&
        HasLegacyRules(options.GetExtension(flower_meta::v1::field))) {
      throw SchemaRefused{file + ": " + field.full_name() +
                          ": rules in both (flower_meta.v1.field) and (buf.validate.field)"};
    }
    const FieldRules& rules = RulesOf(field);
    kinds.clear();
    KindsOf(rules, &kinds);
    RefuseUnenforced(kinds, "field", field.full_name(), file);
    RefuseMisplaced(rules, field, field.is_repeated(), field.full_name(), file);
    CheckPatterns(rules, field.full_name(), file);
    CompileFieldCel(rules, field.full_name(), file);
    if (field.message_type() != nullptr) CheckType(*field.message_type(), seen);
  }
}

}  // namespace

const std::set<std::string>& Enforced() {
  static const std::set<std::string>* kinds = [] {
    auto* found = new std::set<std::string>(std::begin(kEnforced), std::end(kEnforced));
    for (const char* kind : kNumberKinds) {
      for (const char* rule : kNumberRules) found->insert(std::string(kind) + "." + rule);
    }
    found->insert("float.finite");
    found->insert("double.finite");
    return found;
  }();
  return *kinds;
}

void CheckSchema(const Descriptor& type) {
  std::set<const Descriptor*> seen;
  CheckType(type, &seen);
}

std::string NumberText(double number) {
  if (std::isnan(number)) return "NaN";
  if (std::isinf(number)) return number > 0 ? "Infinity" : "-Infinity";
  if (number == 0) return "0";
  std::string sign = number < 0 ? "-" : "";
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, std::fabs(number),
                              std::chars_format::scientific);
  std::string scientific(buffer, result.ptr);  // shortest: "d.ddde+XX"
  auto e = scientific.find('e');
  std::string digits = scientific.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int point = std::stoi(scientific.substr(e + 1)) + 1;  // value = 0.digits * 10^point
  int k = static_cast<int>(digits.size());
  std::string text;
  if (k <= point && point <= 21) {
    text = digits + std::string(point - k, '0');
  } else if (0 < point && point <= 21) {
    text = digits.substr(0, point) + "." + digits.substr(point);
  } else if (-6 < point && point <= 0) {
    text = "0." + std::string(-point, '0') + digits;
  } else {
    int exponent = point - 1;
    text = digits.substr(0, 1) + (k > 1 ? "." + digits.substr(1) : "") + "e" +
           (exponent >= 0 ? "+" : "-") + std::to_string(std::abs(exponent));
  }
  return sign + text;
}

void Validate(const Message& message) {
  try {
    Check(message, "");
  } catch (const RuleFailure& failure) {
    throw Rejected{"rule_error", message.GetDescriptor()->full_name() +
                                     ": a rule could not be evaluated on this payload"};
  }
}

}  // namespace flower_meta_reader
