#include "schema.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <google/protobuf/descriptor.pb.h>

#include "flower_meta/v1/metadata.pb.h"  // links the schema into the generated pool
#include "rules.h"

namespace flower_meta_reader {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptorSet;

// The schema file this reader was built from; its messages are the ones it reads.
constexpr char kSchemaFile[] = "flower_meta/v1/metadata.proto";

std::string Before(const std::string& text, char separator) {
  auto at = text.rfind(separator);
  return at == std::string::npos ? "" : text.substr(0, at);
}

// Collects what the pool says of a file it refuses.
class Errors : public DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const google::protobuf::Message*, ErrorLocation,
                const std::string& message) override {
    if (first.empty()) first = filename + ": " + element_name + ": " + message;
  }
  std::string first;
};

void AddTypes(const Descriptor& type, std::vector<const Descriptor*>* out) {
  if (type.options().map_entry()) return;
  out->push_back(&type);
  for (int i = 0; i < type.nested_type_count(); ++i) AddTypes(*type.nested_type(i), out);
}

void AddFile(const google::protobuf::FileDescriptor& file, std::vector<const Descriptor*>* out) {
  const std::string& name = file.name();
  if (name.rfind("google/protobuf/", 0) == 0 || name.rfind("buf/validate/", 0) == 0) return;
  for (int i = 0; i < file.message_type_count(); ++i) AddTypes(*file.message_type(i), out);
}

}  // namespace

Schema::Schema()
    : pool_(DescriptorPool::generated_pool()),
      package_(DescriptorPool::generated_pool()->FindFileByName(kSchemaFile)->package()) {
  AddFile(*pool_->FindFileByName(kSchemaFile), &types_);
}

void Schema::CheckRules() const {
  for (const Descriptor* type : types_) Check(*type);
}

namespace {

// Set `field` to its zero value: present, or one zero element or entry.
void SetZero(google::protobuf::Message* message, const google::protobuf::FieldDescriptor& field) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection& r = *message->GetReflection();
  if (field.is_repeated()) {
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      google::protobuf::Message* entry = r.AddMessage(message, &field);
      if (field.is_map()) {
        SetZero(entry, *field.message_type()->map_key());
        SetZero(entry, *field.message_type()->map_value());
      }
      return;
    }
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: r.AddInt32(message, &field, 0); break;
      case FieldDescriptor::CPPTYPE_INT64: r.AddInt64(message, &field, 0); break;
      case FieldDescriptor::CPPTYPE_UINT32: r.AddUInt32(message, &field, 0); break;
      case FieldDescriptor::CPPTYPE_UINT64: r.AddUInt64(message, &field, 0); break;
      case FieldDescriptor::CPPTYPE_FLOAT: r.AddFloat(message, &field, 0); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: r.AddDouble(message, &field, 0); break;
      case FieldDescriptor::CPPTYPE_BOOL: r.AddBool(message, &field, false); break;
      case FieldDescriptor::CPPTYPE_ENUM: r.AddEnumValue(message, &field, 0); break;
      case FieldDescriptor::CPPTYPE_STRING: r.AddString(message, &field, ""); break;
      default: break;
    }
    return;
  }
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: r.SetInt32(message, &field, 0); break;
    case FieldDescriptor::CPPTYPE_INT64: r.SetInt64(message, &field, 0); break;
    case FieldDescriptor::CPPTYPE_UINT32: r.SetUInt32(message, &field, 0); break;
    case FieldDescriptor::CPPTYPE_UINT64: r.SetUInt64(message, &field, 0); break;
    case FieldDescriptor::CPPTYPE_FLOAT: r.SetFloat(message, &field, 0); break;
    case FieldDescriptor::CPPTYPE_DOUBLE: r.SetDouble(message, &field, 0); break;
    case FieldDescriptor::CPPTYPE_BOOL: r.SetBool(message, &field, false); break;
    case FieldDescriptor::CPPTYPE_ENUM: r.SetEnumValue(message, &field, 0); break;
    case FieldDescriptor::CPPTYPE_STRING: r.SetString(message, &field, ""); break;
    case FieldDescriptor::CPPTYPE_MESSAGE: r.MutableMessage(message, &field); break;
  }
}

void Closure(const Descriptor& type, std::set<const Descriptor*>* seen) {
  if (!seen->insert(&type).second) return;
  for (int i = 0; i < type.field_count(); ++i) {
    if (type.field(i)->message_type() != nullptr) Closure(*type.field(i)->message_type(), seen);
  }
}

}  // namespace

void Schema::Check(const Descriptor& type) const {
  CheckSchema(type);
  std::set<const Descriptor*> held;
  Closure(type, &held);
  for (const Descriptor* each : held) {
    int widest = 1;
    for (int i = 0; i < each->oneof_decl_count(); ++i) {
      widest = std::max(widest, each->oneof_decl(i)->field_count());
    }
    for (int probe = -1; probe < widest; ++probe) {  // -1: the empty message
      std::unique_ptr<google::protobuf::Message> message = New(*each);
      for (int i = 0; probe >= 0 && i < each->field_count(); ++i) {
        const auto& field = *each->field(i);
        const auto* oneof = field.containing_oneof();
        if (oneof != nullptr && oneof->field(probe % oneof->field_count()) != &field) continue;
        SetZero(message.get(), field);
      }
      try {
        Validate(*message);
      } catch (const Rejected& rejected) {
        if (rejected.reason == "rule_error") {
          throw SchemaRefused{each->file()->name() + ": " + each->full_name() +
                              ": a rule fails on a message of zero values"};
        }
      }
    }
  }
}

Schema::Schema(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw SchemaRefused{path + ": cannot be read"};
  std::stringstream bytes;
  bytes << file.rdbuf();
  FileDescriptorSet set;
  if (!set.ParseFromString(bytes.str())) {
    throw SchemaRefused{path + ": not a FileDescriptorSet"};
  }
  own_pool_ = std::make_unique<DescriptorPool>();
  Errors errors;
  for (const auto& proto : set.file()) {
    if (own_pool_->BuildFileCollectingErrors(proto, &errors) == nullptr) {
      throw SchemaRefused{path + ": " + (errors.first.empty() ? proto.name() : errors.first)};
    }
  }
  pool_ = own_pool_.get();
  for (const auto& proto : set.file()) AddFile(*pool_->FindFileByName(proto.name()), &types_);
  factory_ = std::make_unique<google::protobuf::DynamicMessageFactory>(pool_);
}

const Descriptor& Schema::TypeOf(const std::string& type_url) const {
  static const std::regex kTypeUrl("[A-Za-z0-9._~:/-]{1,256}");
  if (!std::regex_match(type_url, kTypeUrl)) {
    throw Rejected{"invalid_type_url",
                   "type URL is not 1 to 256 characters of A-Z a-z 0-9 . _ ~ : / -"};
  }
  const std::string got = type_url.substr(type_url.rfind('/') + 1);
  const Descriptor* found = pool_->FindMessageTypeByName(got);
  if (found != nullptr && (package_.empty() || found->file()->package() == package_)) {
    return *found;
  }
  const std::string name = got.substr(got.rfind('.') + 1);
  const std::string family = Before(Before(got, '.'), '.');
  if (!package_.empty()) {
    if (family == Before(package_, '.') &&
        pool_->FindMessageTypeByName(package_ + "." + name) != nullptr) {
      throw Rejected{"unsupported_version",
                     "payload is " + got + "; this reader decodes " + package_ + " only"};
    }
    throw Rejected{"wrong_type", "payload is a " + got + ", not a " + package_ + " message"};
  }
  for (const Descriptor* known : types_) {
    if (known->name() == name && Before(known->file()->package(), '.') == family) {
      throw Rejected{"unsupported_version", "payload is " + got + "; this reader decodes " +
                                                known->file()->package() + " only"};
    }
  }
  throw Rejected{"wrong_type", "payload is a " + got + ", not a message of this reader's schema"};
}

std::unique_ptr<google::protobuf::Message> Schema::New(const Descriptor& type) const {
  const google::protobuf::Message* prototype =
      factory_ ? factory_->GetPrototype(&type)
               : google::protobuf::MessageFactory::generated_factory()->GetPrototype(&type);
  return std::unique_ptr<google::protobuf::Message>(prototype->New());
}

}  // namespace flower_meta_reader
