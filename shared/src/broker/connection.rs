//! One connection type for every topology, so no other code knows where Redis runs.
//!
//! [`RedisConnection`] is a single node (a reconnecting `ConnectionManager`), a Cluster (the
//! `redis` crate's `ClusterConnection`: commands go to the node owning their keys' slot and
//! `MOVED`/`ASK` are followed) or the master behind Sentinel (found through the sentinels, and
//! found again after a connection error, so a failover is ridden out). It implements
//! `redis::aio::ConnectionLike`, so every `query_async` and `Script::invoke_async` works as is.
//!
//! A pipeline whose commands hash to several slots cannot go to one Cluster node; such a
//! (non-atomic) pipeline is sent one command at a time, in order, each to its own node, so
//! callers can keep batching reads of several queues (one round trip per command there).
//!
//! [`Connector`] makes them: the shared one (lazy, so a process can start while Redis is down),
//! a dedicated one without a response timeout for blocking commands (on a Cluster it reaches
//! the node owning the blocked key), and pub/sub (on a Cluster, `PUBLISH` reaches every node,
//! so subscribing on any one node hears everything).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::settings::target::{RedisTarget, Topology};

/// How long a single reply may take before the call fails (the connection reconnects itself).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take; short, so an outage answers 503 quickly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to Redis, whatever its topology. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    /// A dedicated connection to one node (blocking commands, Sentinel's current master).
    Direct(MultiplexedConnection),
    Cluster(LazyCluster),
    Sentinel(SentinelMaster),
}

/// A Cluster connection opened on first use, so a process starts while the Cluster is down.
#[derive(Clone)]
struct LazyCluster {
    client: Arc<ClusterClient>,
    conn: Arc<Mutex<Option<ClusterConnection>>>,
}

impl LazyCluster {
    async fn get(&self) -> RedisResult<ClusterConnection> {
        if let Some(conn) = self.conn.lock().expect("cluster connection lock").clone() {
            return Ok(conn);
        }
        let conn = self.client.get_async_connection().await?;
        *self.conn.lock().expect("cluster connection lock") = Some(conn.clone());
        Ok(conn)
    }
}

/// The master Sentinel names, asked again after any connection error (a failover).
#[derive(Clone)]
struct SentinelMaster {
    sentinel: Arc<tokio::sync::Mutex<SentinelClient>>,
    config: AsyncConnectionConfig,
    conn: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl SentinelMaster {
    async fn client(&self) -> RedisResult<redis::Client> {
        self.sentinel.lock().await.async_get_client().await
    }

    async fn get(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.conn.lock().expect("sentinel connection lock").clone() {
            return Ok(conn);
        }
        let conn = self
            .client()
            .await?
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        *self.conn.lock().expect("sentinel connection lock") = Some(conn.clone());
        Ok(conn)
    }

    /// After an error that may mean the master moved, the next call asks the sentinels again.
    fn forget_on<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result
            && (e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error() || is_not_master(e))
        {
            *self.conn.lock().expect("sentinel connection lock") = None;
        }
        result
    }
}

impl RedisConnection {
    /// `WAIT <replicas> <timeout>` on the node that holds `key` (on a Cluster, its slot's
    /// master; elsewhere the one node): how many replicas have every write this connection
    /// sent that node so far.
    pub async fn wait_for_replicas(&mut self, key: &str, replicas: u32, timeout: Duration) -> RedisResult<i64> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout.as_millis().max(1) as u64);
        match &self.0 {
            Inner::Cluster(lazy) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = Route::with_key(key, SlotAddr::Master);
                let value = lazy
                    .get()
                    .await?
                    .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)))
                    .await?;
                redis::from_redis_value(value).map_err(Into::into)
            }
            _ => cmd.query_async(self).await,
        }
    }
}

/// A demoted master answers writes with READONLY; one still syncing with MASTERDOWN.
fn is_not_master(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(redis::ServerErrorKind::ReadOnly | redis::ServerErrorKind::MasterDown)
    )
}

impl RedisConnection {
    /// Whether this is a Redis Cluster connection (commands routed by their keys' slots).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.0, Inner::Cluster(_))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Single(conn) => conn.req_packed_command(cmd),
            Inner::Direct(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(lazy) => async move { lazy.get().await?.req_packed_command(cmd).await }.boxed(),
            Inner::Sentinel(master) => async move {
                let result = match master.get().await {
                    Ok(mut conn) => conn.req_packed_command(cmd).await,
                    Err(e) => Err(e),
                };
                master.forget_on(result)
            }
            .boxed(),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Direct(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(lazy) => async move {
                let mut conn = lazy.get().await?;
                match conn.req_packed_commands(pipeline, offset, count).await {
                    Err(e) if e.kind() == ErrorKind::Server(redis::ServerErrorKind::CrossSlot) && !pipeline.is_transaction() => {
                        one_by_one(conn, pipeline, offset, count).await
                    }
                    other => other,
                }
            }
            .boxed(),
            Inner::Sentinel(master) => async move {
                let result = match master.get().await {
                    Ok(mut conn) => conn.req_packed_commands(pipeline, offset, count).await,
                    Err(e) => Err(e),
                };
                master.forget_on(result)
            }
            .boxed(),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Single(conn) => conn.get_db(),
            Inner::Direct(conn) => conn.get_db(),
            Inner::Cluster(_) => 0,
            Inner::Sentinel(_) => 0,
        }
    }
}

/// A pipeline spanning slots, sent as separate commands in its order (each routed by its
/// keys; a keyless `SCRIPT LOAD` goes to every master before the calls that need it).
fn one_by_one(mut conn: ClusterConnection, pipeline: &Pipeline, offset: usize, count: usize) -> BoxFuture<'_, RedisResult<Vec<Value>>> {
    async move {
        let mut values = Vec::new();
        for cmd in pipeline.cmd_iter() {
            // Like a pipeline, a command's server error is its reply (the caller's parsing
            // reports it); a connection error fails the whole call, as it would a pipeline.
            values.push(match conn.req_packed_command(cmd).await {
                Ok(value) => value,
                Err(e) => Value::ServerError(redis::ServerError::try_from(e)?),
            });
        }
        Ok(values.into_iter().skip(offset).take(count).collect())
    }
    .boxed()
}

/// Makes connections to one target: the shared one, dedicated blocking ones and pub/sub.
#[derive(Clone)]
pub struct Connector {
    target: RedisTarget,
    /// The shared connection (lazy).
    shared: RedisConnection,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Single(redis::Client),
    /// The client for blocking commands (no reply timeout).
    Cluster {
        blocking: Arc<ClusterClient>,
    },
    Sentinel(SentinelMaster),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("target", &self.target).finish()
    }
}

impl Connector {
    /// Prepares the shared connection without connecting.
    pub fn new(target: RedisTarget) -> RedisResult<Self> {
        crate::tls::install_crypto_provider();
        let (shared, kind) = match &target.topology {
            Topology::Single(url) => {
                let client = match &target.certs {
                    Some(certs) => redis::Client::build_with_tls(url.as_str(), certs.clone())?,
                    None => redis::Client::open(url.as_str())?,
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
                (Inner::Single(conn), Kind::Single(client))
            }
            Topology::Cluster(nodes) => {
                let shared = cluster_builder(&target, nodes)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2)
                    .build()?;
                let blocking = cluster_builder(&target, nodes).overall_response_timeout(None).retries(2).build()?;
                let lazy = LazyCluster {
                    client: Arc::new(shared),
                    conn: Arc::default(),
                };
                (
                    Inner::Cluster(lazy),
                    Kind::Cluster {
                        blocking: Arc::new(blocking),
                    },
                )
            }
            Topology::Sentinel { sentinels, master, db } => {
                let master = sentinel_master(&target, sentinels, master, *db, Some(RESPONSE_TIMEOUT))?;
                (Inner::Sentinel(master.clone()), Kind::Sentinel(master))
            }
        };
        Ok(Self {
            target,
            shared: RedisConnection(shared),
            kind,
        })
    }

    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The shared connection (clones share one multiplexed connection per node).
    pub fn shared(&self) -> RedisConnection {
        self.shared.clone()
    }

    /// A new connection with no reply timeout, for blocking commands; on a Cluster its commands
    /// go to the node owning their key.
    pub async fn blocking(&self) -> RedisResult<RedisConnection> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let inner = match &self.kind {
            Kind::Single(client) => Inner::Direct(client.get_multiplexed_async_connection_with_config(&config).await?),
            Kind::Cluster { blocking } => Inner::Cluster(LazyCluster {
                client: blocking.clone(),
                conn: Arc::new(Mutex::new(Some(blocking.get_async_connection().await?))),
            }),
            Kind::Sentinel(master) => Inner::Direct(master.client().await?.get_multiplexed_async_connection_with_config(&config).await?),
        };
        Ok(RedisConnection(inner))
    }

    /// A connection to each master, for commands that walk one node's keyspace (`SCAN`): the
    /// shared connection itself unless on a Cluster.
    pub async fn masters(&self) -> RedisResult<Vec<RedisConnection>> {
        let Kind::Cluster { .. } = &self.kind else {
            return Ok(vec![self.shared()]);
        };
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut self.shared()).await?;
        let mut masters = Vec::new();
        // `<id> <ip:port@bus[,hostname]> <flags> ...`, one line per node.
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
                continue;
            };
            // A master serving slots: a node that holds none holds no keys, and one that became
            // a replica a moment ago may still be gossiped as a master without slots (its keys
            // would then be counted twice).
            let serves_slots = fields.len() > 8;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") || !serves_slots {
                continue;
            }
            let addr = addr.split(['@', ',']).next().unwrap_or_default();
            let Some((host, port)) = addr.rsplit_once(':') else { continue };
            let port = port
                .parse()
                .map_err(|_| RedisError::from((ErrorKind::Parse, "CLUSTER NODES port", addr.to_owned())))?;
            let client = self.target.node_client(&self.target.node_url(host, port, 0))?;
            let config = AsyncConnectionConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(CONNECT_TIMEOUT));
            masters.push(RedisConnection(Inner::Direct(
                client.get_multiplexed_async_connection_with_config(&config).await?,
            )));
        }
        Ok(masters)
    }

    /// A pub/sub connection hearing every `PUBLISH` of the deployment.
    pub async fn pubsub(&self) -> RedisResult<PubSub> {
        match &self.kind {
            Kind::Single(client) => client.get_async_pubsub().await,
            Kind::Sentinel(master) => master.client().await?.get_async_pubsub().await,
            Kind::Cluster { .. } => {
                let Topology::Cluster(nodes) = &self.target.topology else {
                    unreachable!("a cluster connector has a cluster topology")
                };
                // Messages are broadcast over the cluster bus: any reachable node will do.
                let mut last = None;
                for (host, port) in nodes {
                    let url = self.target.node_url(host, *port, 0);
                    match self.target.node_client(&url)?.get_async_pubsub().await {
                        Ok(pubsub) => return Ok(pubsub),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| RedisError::from((ErrorKind::InvalidClientConfig, "no cluster node to subscribe on"))))
            }
        }
    }

    /// Checks, once, that the target is what the settings say: the nodes answer, with these
    /// credentials and certificates, in this topology. `Ok(false)` when Redis is down (refused
    /// or unreachable): the caller starts anyway and connects when it returns. Any other
    /// failure is a misconfiguration, returned as one line naming the cause.
    pub async fn check(&self) -> Result<bool, String> {
        let result = async {
            let mut conn = self.shared();
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            if let Kind::Cluster { .. } = &self.kind {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await?;
                if !info.contains("cluster_state:ok") {
                    return Err(RedisError::from((
                        ErrorKind::Client,
                        "the cluster's state is not ok",
                        info.lines().next().unwrap_or_default().to_owned(),
                    )));
                }
            }
            Ok::<_, RedisError>(())
        };
        match tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, result).await {
            Err(_) => Ok(false),
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) if is_outage(&e) => Ok(false),
            Ok(Err(e)) => Err(self.describe(&e)),
        }
    }

    fn describe(&self, e: &RedisError) -> String {
        let what = match &self.target.topology {
            Topology::Single(_) => "redis".to_owned(),
            Topology::Cluster(_) => "redis cluster".to_owned(),
            Topology::Sentinel { master, .. } => format!("redis sentinel master {master:?}"),
        };
        let cause = match e.kind() {
            ErrorKind::AuthenticationFailed => "authentication failed (wrong user or password)".to_owned(),
            ErrorKind::MasterNameNotFoundBySentinel => "no sentinel knows this master name".to_owned(),
            _ if e.to_string().contains("cluster support disabled") => {
                "a seed node is not in cluster mode (use redis:// for a single node)".to_owned()
            }
            _ if e.to_string().to_ascii_lowercase().contains("certificate") => format!("TLS: {e}"),
            _ => e.to_string(),
        };
        format!("{what}: {}", cause.replace('\n', " "))
    }
}

/// Redis is simply not there (yet): refused, unreachable, or timed out connecting.
fn is_outage(e: &RedisError) -> bool {
    if e.is_connection_refusal() || e.is_timeout() {
        return true;
    }
    // A client's own wrapping of "could not connect to any node" carries no kind of its own.
    let text = e.to_string();
    text.contains("Connection refused") || text.contains("connection refused")
}

fn cluster_builder(target: &RedisTarget, nodes: &[(String, u16)]) -> ClusterClientBuilder {
    let urls: Vec<String> = nodes.iter().map(|(h, p)| target.node_url(h, *p, 0)).collect();
    let mut builder = ClusterClientBuilder::new(urls).connection_timeout(CONNECT_TIMEOUT);
    if let Some(user) = &target.username {
        builder = builder.username(user);
    }
    if let Some(pass) = &target.password {
        builder = builder.password(pass);
    }
    if let Some(certs) = &target.certs {
        builder = builder.certs(certs.clone());
    }
    builder
}

fn sentinel_master(
    target: &RedisTarget,
    sentinels: &[(String, u16)],
    name: &str,
    db: i64,
    response_timeout: Option<Duration>,
) -> RedisResult<SentinelMaster> {
    let addrs = sentinels
        .iter()
        .map(|(h, p)| {
            Ok(redis::IntoConnectionInfo::into_connection_info(target.node_url(h, *p, 0).as_str())?
                .addr()
                .clone())
        })
        .collect::<RedisResult<Vec<_>>>()?;
    let mut builder = SentinelClientBuilder::new(addrs, name, SentinelServerType::Master)?.set_client_to_redis_db(db);
    if target.tls {
        builder = builder
            .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
    }
    if let Some(user) = &target.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(pass) = &target.password {
        builder = builder.set_client_to_redis_password(pass);
    }
    if let Some(certs) = &target.certs {
        builder = builder
            .set_client_to_redis_certificates(certs.clone())
            .set_client_to_sentinel_certificates(certs.clone());
    }
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(response_timeout)
        .set_connection_timeout(Some(CONNECT_TIMEOUT));
    Ok(SentinelMaster {
        sentinel: Arc::new(tokio::sync::Mutex::new(builder.build()?)),
        config,
        conn: Arc::default(),
    })
}
