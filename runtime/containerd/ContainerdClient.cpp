#include "runtime/containerd/ContainerdClient.h"

#include <sys/utsname.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/evp.h>

#include "runtime/containerd/ImageReference.h"
#include "runtime/containerd/TarArchive.h"

namespace daemonlet::runtime::containerd {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

const char* const kOciManifest = "application/vnd.oci.image.manifest.v1+json";
const char* const kOciIndex = "application/vnd.oci.image.index.v1+json";
const char* const kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
const char* const kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
const char* const kOciConfig = "application/vnd.oci.image.config.v1+json";
const char* const kOciLayer = "application/vnd.oci.image.layer.v1.tar";
constexpr std::size_t kChunk = 1 << 20;

std::string hostArchitecture() {
  utsname u{};
  uname(&u);
  const std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m.rfind("arm", 0) == 0) return "arm";
  return m;
}

std::string randomSuffix() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

BlobRef blobOf(const json& descriptor) {
  return {descriptor.value("mediaType", std::string()), descriptor.value("digest", std::string()), descriptor.value("size", std::int64_t{0})};
}

// sha256 of a byte range of a file, streamed.
Result<std::string> digestOfRange(const std::string& path, const TarMember& member) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(member.offset));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(kChunk);
  for (std::uint64_t left = member.size; left > 0;) {
    const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, buffer.size()));
    if (!in.read(buffer.data(), n)) return Error{Error::Code::Protocol, fmt::format("{}: truncated archive", path)};
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n));
    left -= static_cast<std::uint64_t>(n);
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &length);
  std::string hex = "sha256:";
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", out[i]);
  return hex;
}

std::string readRange(const std::string& path, const TarMember& member) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(member.offset));
  std::string data(member.size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(member.size));
  return data;
}

}  // namespace

ContainerdClient::ContainerdClient(std::string socketPath, std::string ns, milliseconds callDeadline)
    : socketPath_(std::move(socketPath)), ns_(std::move(ns)), callDeadline_(callDeadline) {
  grpc::ChannelArguments args;
  // containerd restarts in seconds; gRPC's default backoff would leave us blind for up to 2 min.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 16 << 20);
  channel_ = grpc::CreateCustomChannel("unix://" + socketPath_, grpc::InsecureChannelCredentials(), args);
  version = pb::version::Version::NewStub(channel_);
  containers = pb::containers::Containers::NewStub(channel_);
  tasks = pb::tasks::Tasks::NewStub(channel_);
  images = pb::images::Images::NewStub(channel_);
  content = pb::content::Content::NewStub(channel_);
  snapshots = pb::snapshots::Snapshots::NewStub(channel_);
  diff = pb::diff::Diff::NewStub(channel_);
  leases = pb::leases::Leases::NewStub(channel_);
  events = pb::events::Events::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> ContainerdClient::context(std::optional<milliseconds> deadline, const std::string& lease) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("containerd-namespace", ns_);
  if (!lease.empty()) ctx->AddMetadata("containerd-lease", lease);
  if (deadline) ctx->set_deadline(std::chrono::system_clock::now() + *deadline);
  return ctx;
}

Error ContainerdClient::error(const grpc::Status& status, const std::string& what) const {
  const std::string message = fmt::format("{}: {}", what, status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND: return {Error::Code::NotFound, message};
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION: return {Error::Code::Conflict, message};
    case grpc::StatusCode::UNAVAILABLE:
      return {Error::Code::Unavailable, fmt::format("{}: containerd at {} is not answering: {}", what, socketPath_, status.error_message())};
    case grpc::StatusCode::DEADLINE_EXCEEDED: return {Error::Code::Timeout, message};
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED: return {Error::Code::PermissionDenied, message};
    case grpc::StatusCode::CANCELLED: return {Error::Code::Cancelled, message};
    case grpc::StatusCode::UNIMPLEMENTED: return {Error::Code::Unsupported, message};
    default: return {Error::Code::Engine, message};
  }
}

Result<ContainerdClient::Lease> ContainerdClient::createLease(std::chrono::minutes expiry) {
  pb::leases::CreateRequest req;
  req.set_id("daemonlet-" + randomSuffix());
  const auto expires = std::chrono::system_clock::now() + expiry;
  (*req.mutable_labels())["containerd.io/gc.expire"] = google::protobuf::util::TimeUtil::ToString(
      google::protobuf::util::TimeUtil::SecondsToTimestamp(std::chrono::duration_cast<std::chrono::seconds>(expires.time_since_epoch()).count()));
  pb::leases::CreateResponse resp;
  auto ctx = context();
  if (auto s = leases->Create(ctx.get(), req, &resp); !s.ok()) return error(s, "create lease");
  return Lease(*this, resp.lease().id());
}

ContainerdClient::Lease::~Lease() {
  if (!client_) return;
  pb::leases::DeleteRequest req;
  req.set_id(id_);
  google::protobuf::Empty resp;
  auto ctx = client_->context();
  client_->leases->Delete(ctx.get(), req, &resp);  // if this fails the lease expires by itself
}

Result<std::string> ContainerdClient::readBlob(const std::string& digest) {
  pb::content::ReadContentRequest req;
  req.set_digest(digest);
  auto ctx = context();
  auto reader = content->Read(ctx.get(), req);
  std::string data;
  pb::content::ReadContentResponse chunk;
  while (reader->Read(&chunk)) data += chunk.data();
  if (auto s = reader->Finish(); !s.ok()) return error(s, "read content " + digest);
  return data;
}

Status ContainerdClient::writeBlob(const BlobRef& blob, const std::function<std::size_t(char*, std::size_t)>& read,
                                   const std::map<std::string, std::string>& labels, const std::string& lease) {
  const std::string what = "write content " + blob.digest;
  {
    pb::content::InfoRequest req;
    req.set_digest(blob.digest);
    pb::content::InfoResponse resp;
    auto ctx = context(callDeadline_, lease);
    if (content->Info(ctx.get(), req, &resp).ok()) {
      // Present already: only make sure it carries our GC references.
      if (labels.empty()) return Done{};
      pb::content::UpdateRequest update;
      update.mutable_info()->set_digest(blob.digest);
      for (const auto& [k, v] : labels) {
        (*update.mutable_info()->mutable_labels())[k] = v;
        update.mutable_update_mask()->add_paths("labels." + k);
      }
      pb::content::UpdateResponse updated;
      auto uctx = context(callDeadline_, lease);
      if (auto s = content->Update(uctx.get(), update, &updated); !s.ok()) return error(s, "label content " + blob.digest);
      return Done{};
    }
  }
  auto ctx = context(std::chrono::minutes(10), lease);
  auto stream = content->Write(ctx.get());
  pb::content::WriteContentRequest req;
  pb::content::WriteContentResponse resp;
  const std::string ref = "daemonlet-" + blob.digest + "-" + randomSuffix();
  std::vector<char> buffer(kChunk);
  std::int64_t offset = 0;
  for (;;) {
    const std::size_t n = read(buffer.data(), buffer.size());
    if (n == 0) break;
    req.Clear();
    req.set_action(pb::content::WRITE);
    req.set_ref(ref);
    req.set_total(blob.size);
    req.set_expected(blob.digest);
    req.set_offset(offset);
    req.set_data(buffer.data(), n);
    if (!stream->Write(req) || !stream->Read(&resp)) break;
    offset += static_cast<std::int64_t>(n);
  }
  req.Clear();
  req.set_action(pb::content::COMMIT);
  req.set_ref(ref);
  req.set_total(blob.size);
  req.set_expected(blob.digest);
  req.set_offset(offset);
  for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
  stream->Write(req);
  stream->WritesDone();
  while (stream->Read(&resp)) {}  // Finish waits for every answer to be read
  auto s = stream->Finish();
  if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) return error(s, what);
  return Done{};
}

Status ContainerdClient::writeBlob(const BlobRef& blob, const std::string& bytes, const std::map<std::string, std::string>& labels,
                                   const std::string& lease) {
  std::size_t at = 0;
  return writeBlob(blob, [&](char* out, std::size_t max) {
    const std::size_t n = std::min(max, bytes.size() - at);
    std::copy_n(bytes.data() + at, n, out);
    at += n;
    return n;
  }, labels, lease);
}

Result<ResolvedImage> ContainerdClient::resolveImage(const std::string& reference) {
  const std::string name = normalizeReference(reference);
  pb::images::GetImageRequest req;
  req.set_name(name);
  pb::images::GetImageResponse resp;
  auto ctx = context();
  if (auto s = images->Get(ctx.get(), req, &resp); !s.ok()) {
    if (s.error_code() == grpc::StatusCode::NOT_FOUND)
      return Error{Error::Code::NotFound, fmt::format("image {} is not present in containerd namespace {}", reference, ns_)};
    return error(s, "get image " + reference);
  }
  const auto& t = resp.image().target();
  return resolveManifest(name, {t.media_type(), t.digest(), t.size()}, 0);
}

Result<ResolvedImage> ContainerdClient::resolveManifest(const std::string& name, const BlobRef& target, int depth) {
  auto bytes = readBlob(target.digest);
  if (!bytes) return bytes.error();
  auto doc = json::parse(bytes.value(), nullptr, false);
  if (!doc.is_object()) return Error{Error::Code::Protocol, fmt::format("image {}: manifest {} is not JSON", name, target.digest)};
  const std::string mediaType = doc.value("mediaType", target.mediaType);
  if (mediaType == kOciIndex || mediaType == kDockerList || doc.contains("manifests")) {
    if (depth > 2) return Error{Error::Code::Protocol, fmt::format("image {}: nested indexes", name)};
    const std::string arch = hostArchitecture();
    for (const auto& m : doc.value("manifests", json::array())) {
      const json platform = m.value("platform", json::object());
      if (platform.value("os", std::string("linux")) == "linux" && platform.value("architecture", arch) == arch)
        return resolveManifest(name, blobOf(m), depth + 1);
    }
    return Error{Error::Code::NotFound, fmt::format("image {} has no manifest for linux/{}", name, arch)};
  }
  ResolvedImage out;
  out.name = name;
  out.config = blobOf(doc.value("config", json::object()));
  for (const auto& layer : doc.value("layers", json::array())) out.layers.push_back(blobOf(layer));
  auto configBytes = readBlob(out.config.digest);
  if (!configBytes) return configBytes.error();
  auto config = parseImageConfig(json::parse(configBytes.value(), nullptr, false));
  if (!config) return Error{config.error().code, fmt::format("image {}: {}", name, config.error().message)};
  out.imageConfig = std::move(config.value());
  if (out.imageConfig.diffIds.size() != out.layers.size())
    return Error{Error::Code::Protocol, fmt::format("image {}: {} layers but {} diff_ids", name, out.layers.size(), out.imageConfig.diffIds.size())};
  out.chainId = chainId(out.imageConfig.diffIds);
  return out;
}

bool ContainerdClient::unpacked(const ResolvedImage& image) {
  pb::snapshots::StatSnapshotRequest req;
  req.set_snapshotter(kSnapshotter);
  req.set_key(image.chainId);
  pb::snapshots::StatSnapshotResponse resp;
  auto ctx = context();
  return snapshots->Stat(ctx.get(), req, &resp).ok();
}

Status ContainerdClient::unpack(const ResolvedImage& image, const std::string& lease) {
  std::vector<std::string> chain;
  for (std::size_t i = 0; i < image.layers.size(); ++i) {
    const std::string parent = chain.empty() ? "" : chain.back();
    chain.push_back(i == 0 ? image.imageConfig.diffIds[0] : sha256Digest(parent + " " + image.imageConfig.diffIds[i]));
    const std::string& id = chain.back();
    pb::snapshots::StatSnapshotRequest stat;
    stat.set_snapshotter(kSnapshotter);
    stat.set_key(id);
    pb::snapshots::StatSnapshotResponse statResp;
    if (auto ctx = context(); snapshots->Stat(ctx.get(), stat, &statResp).ok()) continue;

    const std::string key = fmt::format("extract-{}-{}", randomSuffix(), id);
    pb::snapshots::PrepareSnapshotRequest prepare;
    prepare.set_snapshotter(kSnapshotter);
    prepare.set_key(key);
    prepare.set_parent(parent);
    pb::snapshots::PrepareSnapshotResponse mounts;
    if (auto ctx = context(callDeadline_, lease); true) {
      if (auto s = snapshots->Prepare(ctx.get(), prepare, &mounts); !s.ok())
        return error(s, fmt::format("image {}: prepare snapshot for layer {}", image.name, i));
    }
    pb::diff::ApplyRequest apply;
    apply.mutable_diff()->set_media_type(image.layers[i].mediaType);
    apply.mutable_diff()->set_digest(image.layers[i].digest);
    apply.mutable_diff()->set_size(image.layers[i].size);
    *apply.mutable_mounts() = mounts.mounts();
    pb::diff::ApplyResponse applied;
    auto removeKey = [&] {
      pb::snapshots::RemoveSnapshotRequest rm;
      rm.set_snapshotter(kSnapshotter);
      rm.set_key(key);
      google::protobuf::Empty empty;
      auto ctx = context(callDeadline_, lease);
      snapshots->Remove(ctx.get(), rm, &empty);
    };
    if (auto ctx = context(std::chrono::minutes(10), lease); true) {
      if (auto s = diff->Apply(ctx.get(), apply, &applied); !s.ok()) {
        removeKey();
        return error(s, fmt::format("image {}: apply layer {} ({})", image.name, i, image.layers[i].digest));
      }
    }
    if (applied.applied().digest() != image.imageConfig.diffIds[i]) {
      removeKey();
      return Error{Error::Code::Protocol, fmt::format("image {}: layer {} unpacked to {}, but the config says {}", image.name, i,
                                                      applied.applied().digest(), image.imageConfig.diffIds[i])};
    }
    pb::snapshots::CommitSnapshotRequest commit;
    commit.set_snapshotter(kSnapshotter);
    commit.set_name(id);
    commit.set_key(key);
    (*commit.mutable_labels())["containerd.io/snapshot.ref"] = id;
    google::protobuf::Empty empty;
    if (auto ctx = context(callDeadline_, lease); true) {
      if (auto s = snapshots->Commit(ctx.get(), commit, &empty); !s.ok()) {
        removeKey();
        if (s.error_code() != grpc::StatusCode::ALREADY_EXISTS) return error(s, fmt::format("image {}: commit layer {}", image.name, i));
      }
    }
  }
  // The config holds the unpacked snapshot against GC, as containerd's own unpacker does.
  return writeBlob(image.config, std::string(), {{std::string("containerd.io/gc.ref.snapshot.") + kSnapshotter, image.chainId}}, lease);
}

Status ContainerdClient::createImage(const std::string& name, const BlobRef& target, const std::string& lease) {
  pb::images::CreateImageRequest req;
  auto* image = req.mutable_image();
  image->set_name(name);
  image->mutable_target()->set_media_type(target.mediaType);
  image->mutable_target()->set_digest(target.digest);
  image->mutable_target()->set_size(target.size);
  pb::images::CreateImageResponse resp;
  auto ctx = context(callDeadline_, lease);
  auto s = images->Create(ctx.get(), req, &resp);
  if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    pb::images::UpdateImageRequest update;
    *update.mutable_image() = req.image();
    update.mutable_update_mask()->add_paths("target");
    pb::images::UpdateImageResponse updated;
    auto uctx = context(callDeadline_, lease);
    s = images->Update(uctx.get(), update, &updated);
  }
  if (!s.ok()) return error(s, "create image " + name);
  return Done{};
}

Result<std::vector<std::string>> ContainerdClient::importArchive(const std::string& tarPath) {
  const std::string what = "load image " + tarPath;
  auto index = readTarIndex(tarPath);
  if (!index) return Error{index.error().code, what + ": " + index.error().message};
  const auto& members = index.value();
  auto lease = createLease(std::chrono::minutes(30));
  if (!lease) return lease.error();

  auto uploadMember = [&](const BlobRef& blob, const TarMember& m, const std::map<std::string, std::string>& labels) {
    std::ifstream in(tarPath, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(m.offset));
    std::uint64_t left = m.size;
    return writeBlob(blob, [&](char* out, std::size_t max) -> std::size_t {
      const auto n = std::min<std::uint64_t>(left, max);
      if (n == 0 || !in.read(out, static_cast<std::streamsize>(n))) return 0;
      left -= n;
      return static_cast<std::size_t>(n);
    }, labels, lease->id());
  };

  std::vector<std::string> names;
  if (auto manifestEntry = members.find("manifest.json"); manifestEntry != members.end()) {
    // docker save: config and uncompressed layers as files; we write an OCI manifest for them.
    auto manifest = json::parse(readRange(tarPath, manifestEntry->second), nullptr, false);
    if (!manifest.is_array()) return Error{Error::Code::Protocol, what + ": manifest.json is not a JSON array"};
    for (const auto& entry : manifest) {
      const std::string configName = entry.value("Config", std::string());
      auto configMember = members.find(configName);
      if (configMember == members.end()) return Error{Error::Code::Protocol, fmt::format("{}: {} is missing", what, configName)};
      const std::string configBytes = readRange(tarPath, configMember->second);
      auto config = parseImageConfig(json::parse(configBytes, nullptr, false));
      if (!config) return Error{config.error().code, fmt::format("{}: {}: {}", what, configName, config.error().message)};
      BlobRef configBlob{kOciConfig, sha256Digest(configBytes), static_cast<std::int64_t>(configBytes.size())};
      json ociManifest = {{"schemaVersion", 2}, {"mediaType", kOciManifest},
                          {"config", {{"mediaType", configBlob.mediaType}, {"digest", configBlob.digest}, {"size", configBlob.size}}},
                          {"layers", json::array()}};
      std::map<std::string, std::string> manifestLabels{{"containerd.io/gc.ref.content.config", configBlob.digest}};
      ResolvedImage image;
      image.config = configBlob;
      image.imageConfig = config.value();
      image.chainId = chainId(config->diffIds);
      const auto layers = entry.value("Layers", json::array());
      if (layers.size() != config->diffIds.size()) return Error{Error::Code::Protocol, fmt::format("{}: {} layers but {} diff_ids", what, layers.size(), config->diffIds.size())};
      for (std::size_t i = 0; i < layers.size(); ++i) {
        auto layerMember = members.find(layers[i].get<std::string>());
        if (layerMember == members.end()) return Error{Error::Code::Protocol, fmt::format("{}: layer {} is missing", what, layers[i].dump())};
        auto digest = digestOfRange(tarPath, layerMember->second);
        if (!digest) return digest.error();
        if (digest.value() != config->diffIds[i])
          return Error{Error::Code::Protocol, fmt::format("{}: layer {} has digest {}, the config says {}", what, i, digest.value(), config->diffIds[i])};
        BlobRef layer{kOciLayer, digest.value(), static_cast<std::int64_t>(layerMember->second.size)};
        if (auto s = uploadMember(layer, layerMember->second, {}); !s) return s.error();
        ociManifest["layers"].push_back({{"mediaType", layer.mediaType}, {"digest", layer.digest}, {"size", layer.size}});
        manifestLabels[fmt::format("containerd.io/gc.ref.content.l.{}", i)] = layer.digest;
        image.layers.push_back(layer);
      }
      if (auto s = writeBlob(configBlob, configBytes, {}, lease->id()); !s) return s.error();
      const std::string manifestBytes = ociManifest.dump();
      BlobRef manifestBlob{kOciManifest, sha256Digest(manifestBytes), static_cast<std::int64_t>(manifestBytes.size())};
      if (auto s = writeBlob(manifestBlob, manifestBytes, manifestLabels, lease->id()); !s) return s.error();
      if (auto s = unpack(image, lease->id()); !s) return s.error();
      for (const auto& tag : entry.value("RepoTags", json::array())) {
        const std::string name = normalizeReference(tag.get<std::string>());
        if (auto s = createImage(name, manifestBlob, lease->id()); !s) return s.error();
        names.push_back(name);
      }
    }
  } else if (auto indexEntry = members.find("index.json"); indexEntry != members.end()) {
    // OCI layout: every blob is a file already; upload what the index reaches, then name it.
    auto blobMember = [&](const std::string& digest) -> const TarMember* {
      const auto colon = digest.find(':');
      auto it = members.find("blobs/" + digest.substr(0, colon) + "/" + digest.substr(colon + 1));
      return it == members.end() ? nullptr : &it->second;
    };
    std::function<Status(const BlobRef&)> uploadTree = [&](const BlobRef& blob) -> Status {
      const TarMember* m = blobMember(blob.digest);
      if (!m) return Error{Error::Code::Protocol, fmt::format("{}: blob {} is missing", what, blob.digest)};
      std::map<std::string, std::string> labels;
      if (blob.mediaType == kOciIndex || blob.mediaType == kDockerList || blob.mediaType == kOciManifest || blob.mediaType == kDockerManifest) {
        auto doc = json::parse(readRange(tarPath, *m), nullptr, false);
        int n = 0;
        std::vector<BlobRef> children;
        if (doc.contains("config")) {
          children.push_back(blobOf(doc["config"]));
          labels["containerd.io/gc.ref.content.config"] = children.back().digest;
        }
        for (const char* key : {"layers", "manifests"}) {
          for (const auto& d : doc.value(key, json::array())) {
            children.push_back(blobOf(d));
            labels[fmt::format("containerd.io/gc.ref.content.{}.{}", key[0] == 'l' ? "l" : "m", n++)] = children.back().digest;
          }
        }
        for (const auto& child : children) {
          // Manifests for other platforms may be left out of an archive: skip what is absent.
          if (child.mediaType.find("manifest") != std::string::npos && !blobMember(child.digest)) continue;
          if (auto s = uploadTree(child); !s) return s;
        }
      }
      return uploadMember(blob, *m, labels);
    };
    auto index = json::parse(readRange(tarPath, indexEntry->second), nullptr, false);
    for (const auto& d : index.value("manifests", json::array())) {
      const json annotations = d.value("annotations", json::object());
      std::string name = annotations.value("io.containerd.image.name", annotations.value("org.opencontainers.image.ref.name", std::string()));
      if (name.empty()) continue;
      name = normalizeReference(name);
      const BlobRef target = blobOf(d);
      if (auto s = uploadTree(target); !s) return s.error();
      if (auto s = createImage(name, target, lease->id()); !s) return s.error();
      auto resolved = resolveManifest(name, target, 0);
      if (!resolved) return resolved.error();
      if (auto s = unpack(resolved.value(), lease->id()); !s) return s.error();
      names.push_back(name);
    }
  } else {
    return Error{Error::Code::Protocol, what + ": neither a docker save archive (manifest.json) nor an OCI archive (index.json)"};
  }
  if (names.empty()) return Error{Error::Code::Protocol, what + ": the archive names no image"};
  return names;
}

}  // namespace daemonlet::runtime::containerd

namespace daemonlet::runtime::containerd {

Status ContainerdClient::pull(const std::string& reference, RegistryClient& registry, const std::string& workDir) {
  const std::string name = normalizeReference(reference);
  const std::string what = "pull " + name;
  auto ref = parseRegistryReference(name);
  if (!ref) return ref.error();
  std::error_code ec;
  std::filesystem::create_directories(workDir, ec);
  if (ec) return Error{Error::Code::Engine, fmt::format("{}: cannot create {}: {}", what, workDir, ec.message())};
  auto lease = createLease(std::chrono::minutes(30));
  if (!lease) return lease.error();

  auto fetchManifest = [&](const std::string& wanted) -> Result<Manifest> {
    auto m = registry.manifest(wanted);
    if (!m) return m.error();
    m->digest = sha256Digest(m->bytes);
    if (wanted.rfind("sha256:", 0) == 0 && m->digest != wanted)
      return Error{Error::Code::Protocol, fmt::format("{}: manifest {} arrived with digest {}", what, wanted, m->digest)};
    return m;
  };
  auto top = fetchManifest(ref->reference);
  if (!top) return top.error();
  Manifest chosen = top.value();
  std::map<std::string, std::string> topLabels;
  const bool isIndex = top->mediaType == kOciIndex || top->mediaType == kDockerList;
  if (isIndex) {
    const auto index = json::parse(top->bytes, nullptr, false);
    const std::string arch = hostArchitecture();
    std::optional<std::size_t> pick;
    const auto manifests = index.value("manifests", json::array());
    for (std::size_t i = 0; i < manifests.size() && !pick; ++i) {
      const json platform = manifests[i].value("platform", json::object());
      if (platform.value("os", std::string()) == "linux" && platform.value("architecture", std::string()) == arch) pick = i;
    }
    if (!pick) return Error{Error::Code::NotFound, fmt::format("{}: the index has no manifest for linux/{}", what, arch)};
    auto m = fetchManifest(manifests[*pick].value("digest", std::string()));
    if (!m) return m.error();
    chosen = m.value();
    topLabels[fmt::format("containerd.io/gc.ref.content.m.{}", *pick)] = chosen.digest;
  }
  const auto doc = json::parse(chosen.bytes, nullptr, false);
  if (!doc.contains("config") || !doc.contains("layers"))
    return Error{Error::Code::Protocol, fmt::format("{}: manifest {} ({}) has no config or layers", what, chosen.digest, chosen.mediaType)};

  // Config and layers: each blob staged in a file, then streamed into the content store,
  // which checks its digest on commit. Blobs containerd has already are not downloaded.
  std::map<std::string, std::string> manifestLabels;
  std::vector<BlobRef> blobs{blobOf(doc["config"])};
  manifestLabels["containerd.io/gc.ref.content.config"] = blobs[0].digest;
  for (std::size_t i = 0; i < doc["layers"].size(); ++i) {
    blobs.push_back(blobOf(doc["layers"][i]));
    manifestLabels[fmt::format("containerd.io/gc.ref.content.l.{}", i)] = blobs.back().digest;
  }
  for (const auto& blob : blobs) {
    pb::content::InfoRequest req;
    req.set_digest(blob.digest);
    pb::content::InfoResponse resp;
    if (auto ctx = context(callDeadline_, lease->id()); content->Info(ctx.get(), req, &resp).ok()) continue;
    const std::string path = fmt::format("{}/{}-{}.partial", workDir, blob.digest.substr(blob.digest.find(':') + 1), randomSuffix());
    struct FileGuard {
      std::string path;
      ~FileGuard() { std::remove(path.c_str()); }
    } file{path};
    if (auto s = registry.blob(blob.digest, path); !s) return s.error();
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || static_cast<std::int64_t>(size) != blob.size)
      return Error{Error::Code::Protocol, fmt::format("{}: blob {} is {} bytes, the manifest says {}", what, blob.digest, ec ? 0 : size, blob.size)};
    std::ifstream in(path, std::ios::binary);
    auto s = writeBlob(blob, [&](char* out, std::size_t max) -> std::size_t {
      in.read(out, static_cast<std::streamsize>(max));
      return static_cast<std::size_t>(in.gcount());
    }, {}, lease->id());
    if (!s) return Error{s.error().code, what + ": " + s.error().message};
  }
  if (auto s = writeBlob({chosen.mediaType, chosen.digest, static_cast<std::int64_t>(chosen.bytes.size())}, chosen.bytes, manifestLabels, lease->id()); !s)
    return s.error();
  if (isIndex) {
    if (auto s = writeBlob({top->mediaType, top->digest, static_cast<std::int64_t>(top->bytes.size())}, top->bytes, topLabels, lease->id()); !s)
      return s.error();
  }
  if (auto s = createImage(name, {top->mediaType, top->digest, static_cast<std::int64_t>(top->bytes.size())}, lease->id()); !s)
    return s.error();
  auto resolved = resolveImage(name);
  if (!resolved) return resolved.error();
  return unpack(resolved.value(), lease->id());
}

}  // namespace daemonlet::runtime::containerd
