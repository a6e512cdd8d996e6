// Reads one flower_meta.v1 payload and prints its canonical proto3 JSON, or
// "rejected <reason>: <detail>" (exit code 1) by the rules in the .proto.
//
//   consumer TYPE_URL PAYLOAD_FILE
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "flower_meta/v1/metadata.pb.h"

namespace {

using flower_meta::v1::TrainProcessMetadata;
using google::protobuf::Value;

struct Rejected {
  std::string reason;
  std::string detail;
};

// A finite double as ECMAScript's Number.prototype.toString prints it.
std::string FormatNumber(double number) {
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

// A JSON string as RFC 8785 (and JSON.stringify) escapes it.
std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// RFC 8785 canonical JSON: keys sorted (ASCII keys: byte order is UTF-16 order).
std::string Canonical(const Value& value) {
  switch (value.kind_case()) {
    case Value::kNullValue: return "null";
    case Value::kBoolValue: return value.bool_value() ? "true" : "false";
    case Value::kNumberValue: return FormatNumber(value.number_value());
    case Value::kStringValue: return Quote(value.string_value());
    case Value::kListValue: {
      std::string out = "[";
      for (const Value& item : value.list_value().values()) {
        out += (out.size() > 1 ? "," : "") + Canonical(item);
      }
      return out + "]";
    }
    case Value::kStructValue: {
      const auto& fields = value.struct_value().fields();
      std::vector<std::string> keys;
      for (const auto& [key, unused] : fields) keys.push_back(key);
      std::sort(keys.begin(), keys.end());
      std::string out = "{";
      for (const std::string& key : keys) {
        out += (out.size() > 1 ? "," : "") + Quote(key) + ":" + Canonical(fields.at(key));
      }
      return out + "}";
    }
    default: return "null";
  }
}

std::string Before(const std::string& text, char separator) {
  auto at = text.rfind(separator);
  return at == std::string::npos ? "" : text.substr(0, at);
}

void CheckTypeUrl(const std::string& type_url) {
  const auto* descriptor = TrainProcessMetadata::descriptor();
  std::string got = type_url.substr(type_url.rfind('/') + 1);
  if (got == descriptor->full_name()) return;
  std::string name = got.substr(got.rfind('.') + 1);
  if (name == descriptor->name() &&
      Before(Before(got, '.'), '.') == Before(descriptor->file()->package(), '.')) {
    throw Rejected{"unsupported_version", "payload is " + got + "; this reader decodes " +
                                              descriptor->full_name() + " only"};
  }
  throw Rejected{"wrong_type", "payload is a " + got + ", expected " + descriptor->full_name()};
}

void Validate(const TrainProcessMetadata& meta) {
  if (!meta.has_training_time()) {
    throw Rejected{"missing_training_time", "training_time is missing"};
  }
  if (!std::isfinite(meta.training_time()) || meta.training_time() < 0) {
    throw Rejected{"training_time_out_of_range", "training_time is not finite and >= 0"};
  }
  for (int i = 0; i < meta.training_losses_size(); ++i) {
    double loss = meta.training_losses(i);
    if (!std::isfinite(loss) || loss < 0) {
      throw Rejected{"loss_out_of_range",
                     "epoch_" + std::to_string(i + 1) + " loss is not finite and >= 0"};
    }
  }
}

TrainProcessMetadata Decode(const std::string& type_url, const std::string& payload) {
  CheckTypeUrl(type_url);
  TrainProcessMetadata meta;
  if (!meta.ParseFromString(payload)) {
    throw Rejected{"malformed", std::to_string(payload.size()) + " bytes are not a " +
                                    meta.GetDescriptor()->full_name()};
  }
  Validate(meta);
  return meta;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: consumer TYPE_URL PAYLOAD_FILE\n";
    return 2;
  }
  std::ifstream file(argv[2], std::ios::binary);
  std::stringstream payload;
  payload << file.rdbuf();
  try {
    TrainProcessMetadata meta = Decode(argv[1], payload.str());
    std::string json;
    Value value;
    if (!google::protobuf::util::MessageToJsonString(meta, &json).ok() ||
        !google::protobuf::util::JsonStringToMessage(json, &value).ok()) {
      std::cerr << "cannot print JSON\n";
      return 2;
    }
    std::cout << Canonical(value) << "\n";
  } catch (const Rejected& rejected) {
    std::cout << "rejected " << rejected.reason << ": " << rejected.detail << "\n";
    return 1;
  }
  return 0;
}
