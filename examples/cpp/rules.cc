#include "rules.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "buf/validate/validate.pb.h"
#include "flower_meta/v1/options.pb.h"

namespace flower_meta_reader {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using flower_meta::v1::FieldSpec;
using flower_meta::v1::MessageSpec;
using buf::validate::FieldRules;

bool IsNumber(const FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

// The field's value (or element `index` of a repeated field) as a double.
double NumberAt(const Message& message, const FieldDescriptor& field, int index) {
  const Reflection& r = *message.GetReflection();
  const bool list = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return list ? r.GetRepeatedDouble(message, &field, index) : r.GetDouble(message, &field);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return list ? r.GetRepeatedFloat(message, &field, index) : r.GetFloat(message, &field);
    case FieldDescriptor::CPPTYPE_INT32:
      return list ? r.GetRepeatedInt32(message, &field, index) : r.GetInt32(message, &field);
    case FieldDescriptor::CPPTYPE_INT64:
      return static_cast<double>(list ? r.GetRepeatedInt64(message, &field, index)
                                      : r.GetInt64(message, &field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return list ? r.GetRepeatedUInt32(message, &field, index) : r.GetUInt32(message, &field);
    default:
      return static_cast<double>(list ? r.GetRepeatedUInt64(message, &field, index)
                                      : r.GetUInt64(message, &field));
  }
}

// One number type's bounds (and finite, for float and double) into `spec`.
template <typename Typed>
void MergeBounds(const Typed& typed, FieldSpec* spec) {
  if (typed.has_gt()) spec->set_gt(static_cast<double>(typed.gt()));
  if (typed.has_gte()) spec->set_gte(static_cast<double>(typed.gte()));
  if (typed.has_lt()) spec->set_lt(static_cast<double>(typed.lt()));
  if (typed.has_lte()) spec->set_lte(static_cast<double>(typed.lte()));
}

template <typename Typed>
void MergeFloating(const Typed& typed, FieldSpec* spec) {
  if (typed.finite()) spec->set_finite(true);
  MergeBounds(typed, spec);
}

// The rules of the field's number type in `rules` (its items' if repeated).
void MergeTyped(const FieldRules& rules, FieldDescriptor::Type type, FieldSpec* spec) {
  switch (type) {
    case FieldDescriptor::TYPE_DOUBLE: return MergeFloating(rules.double_(), spec);
    case FieldDescriptor::TYPE_FLOAT: return MergeFloating(rules.float_(), spec);
    case FieldDescriptor::TYPE_INT32: return MergeBounds(rules.int32(), spec);
    case FieldDescriptor::TYPE_INT64: return MergeBounds(rules.int64(), spec);
    case FieldDescriptor::TYPE_UINT32: return MergeBounds(rules.uint32(), spec);
    case FieldDescriptor::TYPE_UINT64: return MergeBounds(rules.uint64(), spec);
    case FieldDescriptor::TYPE_SINT32: return MergeBounds(rules.sint32(), spec);
    case FieldDescriptor::TYPE_SINT64: return MergeBounds(rules.sint64(), spec);
    case FieldDescriptor::TYPE_FIXED32: return MergeBounds(rules.fixed32(), spec);
    case FieldDescriptor::TYPE_FIXED64: return MergeBounds(rules.fixed64(), spec);
    case FieldDescriptor::TYPE_SFIXED32: return MergeBounds(rules.sfixed32(), spec);
    case FieldDescriptor::TYPE_SFIXED64: return MergeBounds(rules.sfixed64(), spec);
    default: return;
  }
}

// The field's (flower_meta.v1.field) option with its (buf.validate.field)
// rules read into it: required, finite and the bounds, as the Python reader
// reads them (flower_app/protocol/schema.py field_spec).
FieldSpec SpecOf(const FieldDescriptor& field) {
  FieldSpec spec = field.options().GetExtension(flower_meta::v1::field);
  const FieldRules& rules = field.options().GetExtension(buf::validate::field);
  if (rules.required()) spec.set_required(true);
  MergeTyped(field.is_repeated() ? rules.repeated().items() : rules, field.type(), &spec);
  return spec;
}

std::string DescribeRule(const FieldSpec& spec) {
  std::vector<std::string> parts;
  if (spec.finite()) parts.push_back("finite");
  if (spec.has_gte()) parts.push_back(">= " + NumberText(spec.gte()));
  if (spec.has_gt()) parts.push_back("> " + NumberText(spec.gt()));
  if (spec.has_lte()) parts.push_back("<= " + NumberText(spec.lte()));
  if (spec.has_lt()) parts.push_back("< " + NumberText(spec.lt()));
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : " and ") + part;
  return text;
}

bool HasValueRule(const FieldSpec& spec) {
  return spec.finite() || spec.has_gte() || spec.has_gt() || spec.has_lte() || spec.has_lt();
}

bool Obeys(const FieldSpec& spec, double value) {
  return (!spec.finite() || std::isfinite(value)) && (!spec.has_gte() || value >= spec.gte()) &&
         (!spec.has_gt() || value > spec.gt()) && (!spec.has_lte() || value <= spec.lte()) &&
         (!spec.has_lt() || value < spec.lt());
}

std::string Reason(const std::string& own, const std::string& message_default,
                   const char* fallback) {
  return !own.empty() ? own : !message_default.empty() ? message_default : fallback;
}

void Check(const Message& message, const std::string& path) {
  const Descriptor& type = *message.GetDescriptor();
  const Reflection& r = *message.GetReflection();
  const MessageSpec& defaults = type.options().GetExtension(flower_meta::v1::message);
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    const FieldSpec spec = SpecOf(field);
    const std::string at = path + field.name();
    if (spec.required() && !field.is_repeated() && !r.HasField(message, &field)) {
      throw Rejected{Reason(spec.missing_reason(), defaults.missing_reason(), "missing_field"),
                     at + ": missing; it is required"};
    }
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field.is_map()) {
      if (field.is_repeated()) {
        for (int k = 0; k < r.FieldSize(message, &field); ++k) {
          Check(r.GetRepeatedMessage(message, &field, k), at + "[" + std::to_string(k) + "].");
        }
      } else if (r.HasField(message, &field)) {
        Check(r.GetMessage(message, &field), at + ".");
      }
      continue;
    }
    if (!HasValueRule(spec) || !IsNumber(field)) continue;
    // absent is not 0: `required` alone says whether it may be
    if (!field.is_repeated() && field.has_presence() && !r.HasField(message, &field)) continue;
    const int count = field.is_repeated() ? r.FieldSize(message, &field) : 1;
    for (int k = 0; k < count; ++k) {
      const double value = NumberAt(message, field, k);
      if (!Obeys(spec, value)) {
        const std::string where = field.is_repeated() ? at + "[" + std::to_string(k) + "]" : at;
        throw Rejected{Reason(spec.invalid_reason(), defaults.invalid_reason(), "out_of_range"),
                       where + ": must be " + DescribeRule(spec) + ", got " + NumberText(value)};
      }
    }
  }
}

}  // namespace

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

void Validate(const Message& message) { Check(message, ""); }

}  // namespace flower_meta_reader
