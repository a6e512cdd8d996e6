// The schema this reader reads by: the flower_meta.v1 types it was built
// with, or any FileDescriptorSet given at run time (--schema: a run folder's
// schema.binpb, or `buf build -o`), its messages made by a
// DynamicMessageFactory; and the message type a type URL names in it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>

namespace flower_meta_reader {

class Schema {
 public:
  // flower_meta.v1, as compiled into this reader.
  Schema();
  // The FileDescriptorSet in `path`; throws SchemaRefused naming the file and
  // the problem if it does not parse or build.
  explicit Schema(const std::string& path);

  // The message type a type URL names; throws Rejected (invalid_type_url,
  // wrong_type, unsupported_version) otherwise.
  const google::protobuf::Descriptor& TypeOf(const std::string& type_url) const;
  // An empty message of `type`, to parse into.
  std::unique_ptr<google::protobuf::Message> New(const google::protobuf::Descriptor& type) const;
  // Throws SchemaRefused, in one line, if any message type of the schema's
  // own files (not Google's or buf's) holds a rule this reader cannot apply.
  void CheckRules() const;
  // The same for one type (and the types it holds): CheckSchema, then its
  // rules on its empty message and on messages of zero values, which a rule
  // that cannot be evaluated there fails (as the other readers refuse it).
  void Check(const google::protobuf::Descriptor& type) const;
  const google::protobuf::DescriptorPool& pool() const { return *pool_; }

 private:
  std::unique_ptr<google::protobuf::DescriptorPool> own_pool_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  const google::protobuf::DescriptorPool* pool_;
  std::string package_;  // the built-in schema's package: the one it reads
  std::vector<const google::protobuf::Descriptor*> types_;  // every message type, nested too
};

}  // namespace flower_meta_reader
