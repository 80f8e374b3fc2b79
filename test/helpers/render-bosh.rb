# Renders one BOSH job template the way the director does, for tests: properties are the job spec's
# defaults overlaid with the manifest's, p() / if_p() / spec behave as in bosh-template (which is
# not packaged in Debian). Usage: ruby render-bosh.rb JOB_SPEC TEMPLATE CONTEXT_JSON
# CONTEXT_JSON: {"properties": {...manifest properties...}, "spec": {"deployment": ..., ...}}
require 'erb'
require 'json'
require 'ostruct'
require 'yaml'

class UnknownProperty < StandardError; end

class RenderContext
  UNSET = Object.new

  def initialize(job_spec, context)
    @declared = job_spec.fetch('properties', {})
    @props = context.fetch('properties', {})
    @spec = OpenStruct.new(context.fetch('spec', {}))
  end

  attr_reader :spec

  def p(name, default = UNSET)
    raise UnknownProperty, "#{name} is not declared in the job spec" unless @declared.key?(name)
    found, value = lookup(name)
    return value if found
    return default unless default.equal?(UNSET)
    raise UnknownProperty, "Can't find property '#{name}'"
  end

  # Yields only when every property has a value (from the manifest or a default), as bosh does.
  def if_p(*names)
    values = names.map do |name|
      raise UnknownProperty, "#{name} is not declared in the job spec" unless @declared.key?(name)
      found, value = lookup(name)
      return unless found
      value
    end
    yield(*values)
  end

  def get_binding
    binding
  end

  private

  def lookup(name)
    node = @props
    name.split('.').each do |part|
      return lookup_default(name) unless node.is_a?(Hash) && node.key?(part)
      node = node[part]
    end
    node.nil? ? lookup_default(name) : [true, node]
  end

  def lookup_default(name)
    d = @declared[name]
    d.is_a?(Hash) && d.key?('default') && !d['default'].nil? ? [true, d['default']] : [false, nil]
  end
end

job_spec = YAML.safe_load(File.read(ARGV[0]))
context = JSON.parse(File.read(ARGV[2]))
template = ERB.new(File.read(ARGV[1]), trim_mode: '-')
$stdout.write(template.result(RenderContext.new(job_spec, context).get_binding))
