#pragma once
// Internal to runtime/containerd: blocking calls to containerd's v1 gRPC API, each with a
// deadline. Only ever run on the adapter's worker threads, never on the agent's thread.
// Besides the stubs it holds the multi-call sequences of image handling: resolving an
// image to its config and chain ID, unpacking layers into the snapshotter, importing an
// archive. Whatever creates unreferenced content or snapshots runs under an expiring lease.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "containers.grpc.pb.h"
#include "content.grpc.pb.h"
#include "diff.grpc.pb.h"
#include "events.grpc.pb.h"
#include "images.grpc.pb.h"
#include "leases.grpc.pb.h"
#include "snapshots.grpc.pb.h"
#include "tasks.grpc.pb.h"
#include "version.grpc.pb.h"

#include "runtime/Result.h"
#include "runtime/containerd/OciSpec.h"
#include "runtime/containerd/RegistryClient.h"

namespace daemonlet::runtime::containerd {

namespace pb {
namespace containers = ::containerd::services::containers::v1;
namespace content = ::containerd::services::content::v1;
namespace diff = ::containerd::services::diff::v1;
namespace events = ::containerd::services::events::v1;
namespace images = ::containerd::services::images::v1;
namespace leases = ::containerd::services::leases::v1;
namespace snapshots = ::containerd::services::snapshots::v1;
namespace tasks = ::containerd::services::tasks::v1;
namespace version = ::containerd::services::version::v1;
namespace types = ::containerd::types;
namespace task = ::containerd::v1::types;
}  // namespace pb

inline constexpr const char* kSnapshotter = "overlayfs";

struct BlobRef {
  std::string mediaType;
  std::string digest;
  std::int64_t size = 0;
};

// An image as a container needs it: its config and the snapshot its layers make.
struct ResolvedImage {
  std::string name;  // normalised
  BlobRef config;
  std::vector<BlobRef> layers;
  ImageConfig imageConfig;
  std::string chainId;
};

class ContainerdClient {
 public:
  ContainerdClient(std::string socketPath, std::string ns, std::chrono::milliseconds callDeadline);

  const std::string& socketPath() const { return socketPath_; }
  const std::string& ns() const { return ns_; }
  std::chrono::milliseconds callDeadline() const { return callDeadline_; }

  // A context carrying our namespace (and a lease), with a deadline; none for streams.
  std::unique_ptr<grpc::ClientContext> context(std::optional<std::chrono::milliseconds> deadline, const std::string& lease = {}) const;
  std::unique_ptr<grpc::ClientContext> context(const std::string& lease = {}) const { return context(callDeadline_, lease); }
  // `what` plus containerd's own message, with a code the caller can act on.
  Error error(const grpc::Status& status, const std::string& what) const;

  // Holds what is written under it from containerd's garbage collector; deleted when this
  // goes, and expires by itself if we die first.
  class Lease {
   public:
    Lease(ContainerdClient& client, std::string id) : client_(&client), id_(std::move(id)) {}
    Lease(Lease&& other) noexcept : client_(std::exchange(other.client_, nullptr)), id_(std::move(other.id_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    const std::string& id() const { return id_; }

   private:
    ContainerdClient* client_;
    std::string id_;
  };
  Result<Lease> createLease(std::chrono::minutes expiry);

  Result<std::string> readBlob(const std::string& digest);
  // `read(buffer, max)` returns how many bytes it put there, 0 at the end.
  Status writeBlob(const BlobRef& blob, const std::function<std::size_t(char*, std::size_t)>& read,
                   const std::map<std::string, std::string>& labels, const std::string& lease);
  Status writeBlob(const BlobRef& blob, const std::string& bytes, const std::map<std::string, std::string>& labels,
                   const std::string& lease);

  // NotFound when containerd has no image by that name.
  Result<ResolvedImage> resolveImage(const std::string& reference);
  bool unpacked(const ResolvedImage& image);
  Status unpack(const ResolvedImage& image, const std::string& lease);
  // docker save or OCI archive; returns the names of the images it held.
  Result<std::vector<std::string>> importArchive(const std::string& tarPath);
  // From the registry `registry` speaks to: the manifest (the host platform's, from an
  // index), config and layers written under a lease (downloads staged in `workDir`),
  // the image created as `reference`, its layers unpacked.
  Status pull(const std::string& reference, RegistryClient& registry, const std::string& workDir);

  std::unique_ptr<pb::version::Version::Stub> version;
  std::unique_ptr<pb::containers::Containers::Stub> containers;
  std::unique_ptr<pb::tasks::Tasks::Stub> tasks;
  std::unique_ptr<pb::images::Images::Stub> images;
  std::unique_ptr<pb::content::Content::Stub> content;
  std::unique_ptr<pb::snapshots::Snapshots::Stub> snapshots;
  std::unique_ptr<pb::diff::Diff::Stub> diff;
  std::unique_ptr<pb::leases::Leases::Stub> leases;
  std::unique_ptr<pb::events::Events::Stub> events;

 private:
  Result<ResolvedImage> resolveManifest(const std::string& name, const BlobRef& target, int depth);
  Status createImage(const std::string& name, const BlobRef& target, const std::string& lease);

  std::string socketPath_;
  std::string ns_;
  std::chrono::milliseconds callDeadline_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace daemonlet::runtime::containerd
